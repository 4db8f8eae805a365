// The main job at a tiny size (one layer, width 32, a dozen steps), end to end on the GPU:
// entries compiled ahead of time and loaded from their manifests, pretraining that brings the
// loss down (its first step checked against the float64 interpreter), fine-tuning with each
// method, every output file written and readable (checkpoints, merged models, PEFT adapters
// imported back, SVGs, the tables), and sampling from the compiled forward: deterministic for a
// fixed seed and computing the model's logits. The seed of the run is fresh each time and printed
// on failure.
//
// On a machine whose Mesa shader cache is empty, lavapipe compiles every kernel on its first
// dispatch (seconds each): the first run of this file then spends minutes in beforeAll, later
// runs seconds. The timeout allows for the first.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crossEntropy, evaluate, hostTensor } from "@dorafuse/core";
import { createDevice, importPeftAdapter, loadCheckpoint, readSafetensors, type Device, type ShapedArray } from "@dorafuse/runtime";
import { testSeed } from "../../../packages/core/test/support/random.js";
import { BatchSampler, bitsPerByte, effectiveWeight, loadMobyDick, loadSotu, matrix, splitCorpus, type Split } from "../src/index.js";
import { DEFAULT_CONFIG, type RunOptions } from "../src/config.js";
import { generateBatch } from "../src/generate-batch.js";
import { logits, METHODS, type RunConfig } from "../src/model.js";
import { runFinetune, type RunSummary } from "../src/run.js";
import { spreadSteps } from "../src/train.js";
import { loadMerged, readParams, treeFromFlat } from "../src/weights.js";
import { parseSvg } from "./support/svg.js";

const seed = testSeed();
const cfg: RunConfig = { ...DEFAULT_CONFIG, layers: 1, dim: 32, heads: 2, seq: 16, batch: 4, sampleBatch: 2, rank: 2, alpha: 4, pretrainSteps: 12, finetuneSteps: 6, seed };
const options: RunOptions = { out: mkdtempSync(join(tmpdir(), "dorafuse-finetune-")), run: "tiny", evalBatches: 3, evalEvery: 3, checkpoints: 3, sampleTokens: 12, prompts: ["The whale ", "Call me "] };
const tag = `[seed ${seed}; replay with DORAFUSE_SEED=${seed}]`;

let device: Device;
let run: RunSummary;
let data: { source: Split; target: Split };
const logged: string[] = [];

beforeAll(async () => {
  device = await createDevice();
  data = { source: splitCorpus(loadSotu()), target: splitCorpus(loadMobyDick()) };
  run = await runFinetune(cfg, options, { device, data, stream: { write: () => true, isTTY: false }, log: (l) => logged.push(l) });
}, 30 * 60_000);

afterAll(() => {
  for (const p of Object.values(run?.programs ?? {})) p.dispose();
  device?.dispose();
});

const read = (path: string) => readFileSync(path, "utf8");
const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let d = 0;
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    d += (got[i]! - want[i]!) ** 2;
    n += want[i]! ** 2;
  }
  return Math.sqrt(d / n);
};

describe("the fine-tuning run at a tiny size", () => {
  it("pretraining on the GPU starts at the interpreter's loss and brings the loss down; fine-tuning lowers the Moby Dick validation loss", async () => {
    const losses = run.record.pretrain.train.map(([, l]) => l);
    expect(losses.length).toBe(cfg.pretrainSteps);
    // step 1 against the float64 interpreter on the initial parameters and the same batch
    const initial = await loadCheckpoint(join(run.paths.gen, "pretrain", "initial.safetensors"));
    const params = treeFromFlat(initial.tensors as Record<string, ShapedArray>);
    const first = new BatchSampler(data.source.train, { batch: cfg.batch, seq: cfg.seq, seed }).batchAt(0);
    const ids = hostTensor([cfg.batch, cfg.seq], first.inputs, "i32");
    const targets = hostTensor([cfg.batch, cfg.seq], first.targets, "i32");
    const want = evaluate((p: never, x: never, y: never) => crossEntropy(logits(p, x, cfg, undefined, null) as never, y), [params, ids, targets] as never) as unknown as { data: Float64Array };
    expect(Math.abs(losses[0]! - want.data[0]!) / want.data[0]!, `${tag} step 1: GPU ${losses[0]}, interpreter ${want.data[0]}`).toBeLessThan(1e-4);
    const last = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last, `${tag} pretraining loss ${losses.map((l) => l.toFixed(3)).join(" ")}`).toBeLessThan(losses[0]! - 0.3);
    for (const m of run.record.methods) {
      const v = m.phase.validation;
      expect(v[0]![1]).toBe(run.record.base.target);
      expect(m.result.validationLoss, `${tag} ${m.result.method}: validation ${v.map(([, l]) => l.toFixed(4)).join(" ")}`).toBeLessThan(run.record.base.target);
    }
  });

  it("writes every output, and each reads back: tables, SVGs, checkpoints, merged models, PEFT adapters", async () => {
    const results = read(run.paths.results);
    const table = results.slice(0, results.indexOf("## Before and after"));
    const rows = table.split("\n").filter((l) => /^\| (full|lora|dora) \|/.test(l));
    expect(rows.map((r) => r.split("|")[1]!.trim())).toEqual([...METHODS]);
    run.record.methods.forEach((m, i) => expect(rows[i]).toContain(bitsPerByte(m.result.validationLoss).toFixed(4)));

    const loss = parseSvg(read(run.paths.lossPlot));
    expect(loss.byClass("series").map((s) => s.getAttribute("data-name"))).toEqual(METHODS.flatMap((m) => [`${m} train (EMA)`, `${m} validation`]));
    expect(parseSvg(read(run.paths.pretrainPlot)).byClass("series")).toHaveLength(2);
    const analysis = parseSvg(read(run.paths.analysisPlot));
    expect(analysis.byClass("panel").map((p) => p.getAttribute("data-method"))).toEqual([...METHODS]);
    const saved = spreadSteps(cfg.finetuneSteps, options.checkpoints);
    expect(analysis.byClass("point")).toHaveLength(METHODS.length * saved.length * 2 * cfg.layers);

    const samples = read(run.paths.samples);
    for (const prompt of options.prompts) expect(samples).toContain(`## Prompt: ${JSON.stringify(prompt)}`);
    for (const model of ["base", ...METHODS]) expect(samples.split(`### ${model} (`).length - 1).toBe(options.prompts.length);

    for (const method of METHODS) {
      const mp = run.paths.method(method);
      for (const step of saved) {
        const ckpt = await loadCheckpoint(mp.checkpoint(step));
        expect(ckpt.step).toBe(step);
        expect(Object.keys(ckpt.tensors).some((k) => k.startsWith("opt."))).toBe(true);
      }
      const final = (await loadCheckpoint(mp.checkpoint(cfg.finetuneSteps))).tensors;
      const { tensors: merged } = await readSafetensors(mp.merged);
      const names = [...merged.keys()];
      expect(names.every((n) => /\.(weight|bias)$/.test(n)), names.join(", ")).toBe(true);
      // the merged q projection against the host merge of the final checkpoint's factors
      const q = (leaf: string) => final[`params.blocks.0.attn.q.${leaf}`];
      const w = q("w")!;
      const m = (t: typeof w | undefined) => t && matrix(t.shape[0]!, t.shape[1] ?? 1, t.data as Float32Array);
      const want = effectiveWeight({ w: m(w)!, ...(q("loraA") ? { loraA: m(q("loraA"))!, loraB: m(q("loraB"))! } : {}), ...(q("m") ? { m: q("m")!.data as Float32Array } : {}) }, cfg.alpha / cfg.rank);
      expect(relErr(merged.get("blocks.0.attn.q.weight")!.data as Float32Array, want.data), `${tag} ${method} merged q`).toBeLessThan(1e-6);
      if (method === "full") continue;
      const adapter = await importPeftAdapter(mp.adapter);
      expect(adapter.config.use_dora).toBe(method === "dora");
      expect(adapter.config.r).toBe(cfg.rank);
      expect(adapter.layers).toHaveLength(6 * cfg.layers);
      // back into the compiled step, over its initial adapters: the final checkpoint's factors, bit for bit
      const program = run.programs[method];
      await program.restore(join(run.paths.gen, method, "initial.safetensors"));
      await program.importAdapter(mp.adapter);
      for (const leaf of method === "dora" ? ["loraA", "loraB", "m"] : ["loraA", "loraB"]) {
        const key = `params.blocks.0.mlp.up.${leaf}`;
        const got = (await program.readState(key)) as ShapedArray;
        expect(Array.from(got.data), `${key} after importing the PEFT adapter`).toEqual(Array.from(final[key]!.data as Float32Array));
      }
    }
  });

  it("samples from the compiled forward deterministically for a fixed seed, with the model's logits", async () => {
    const forward = run.programs.forward;
    await loadMerged(forward, run.paths.method("dora").merged);
    const settings = { maxTokens: 12, temperature: 0.8, topK: 40, seed: 1 };
    const rows = { batch: cfg.sampleBatch, seq: cfg.seq };
    const again = await generateBatch(forward, options.prompts, rows, settings);
    const twice = await generateBatch(forward, options.prompts, rows, settings);
    expect(twice.map((g) => Array.from(g.tokens))).toEqual(again.map((g) => Array.from(g.tokens)));
    // samples.md was written by the same path with the same seed
    const page = read(run.paths.samples);
    for (const [i, prompt] of options.prompts.entries()) expect(page).toContain(`### dora (temperature 0.8, top-k 40, seed 1)\n\n\`\`\`text\n${prompt}${again[i]!.text}\n`);
    const other = await generateBatch(forward, options.prompts, rows, { ...settings, seed: 2 });
    expect(other.map((g) => g.text)).not.toEqual(again.map((g) => g.text));

    // the compiled forward's logits against the interpreter, on the weights it holds
    const ids = Int32Array.from({ length: cfg.sampleBatch * cfg.seq }, (_, i) => (i * 37 + seed) % 256);
    const got = ((await forward.read([{ shape: [cfg.sampleBatch, cfg.seq], data: ids }])) as { logits: ShapedArray }).logits.data as Float32Array;
    const params = await readParams(forward);
    const want = evaluate((p: never, x: never) => logits(p, x, cfg, undefined, null), [params, hostTensor([cfg.sampleBatch, cfg.seq], ids, "i32")] as never) as unknown as { data: Float64Array };
    expect(relErr(got, want.data), `${tag} forward logits`).toBeLessThan(1e-5);
  });
});
