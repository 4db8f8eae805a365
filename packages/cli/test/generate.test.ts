// `dorafuse generate` end to end, as a user runs it, on model folders in Hugging Face's layout:
// the greedy continuation is the one transformers' computation gives (the independent float64
// reference, argmax token by token), with and without a tokenizer, unmerged and merged PEFT
// adapters agree, and every mistake is one line on stderr with exit code 2.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { exportPeftAdapter } from "@dorafuse/runtime";
import { gpt2Config, llamaConfig, randomGpt2Weights, randomLlamaWeights, writeHfFolder, type Weights } from "../../models/test/support/hf-checkpoint.js";
import { gpt2Logits, llamaLogits } from "../../models/test/support/hf-reference.js";
import { writeGpt2Tokenizer } from "../../models/test/support/gpt2-tokenizer.js";
import { Rng } from "../../core/test/support/random.js";
import { useTempDirs } from "../../models/test/support/temp.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = fileURLToPath(new URL("../bin/dorafuse.mjs", import.meta.url));

function dorafuse(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** transformers' greedy continuation: the argmax of the last position's logits, one token at a time, up to EOS. */
function greedy(logits: (ids: number[]) => Float64Array, vocab: number, prompt: number[], n: number, eos: number): number[] {
  const ids = [...prompt];
  for (let i = 0; i < n && ids.at(-1) !== eos; i++) {
    const all = logits(ids);
    const last = all.subarray((ids.length - 1) * vocab);
    ids.push(last.indexOf(Math.max(...last)));
  }
  return ids.slice(prompt.length);
}

const tempDir = useTempDirs();

/** A DoRA adapter on q_proj and v_proj of every layer, and the weights with it merged in (PEFT's formula). */
function doraAdapter(config: Record<string, unknown>, weights: Weights, rng: Rng): { tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }>; merged: Weights } {
  const [rank, alpha] = [4, 8];
  const s = alpha / rank;
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  const merged = new Map(weights);
  for (let l = 0; l < (config.num_hidden_layers as number); l++) {
    for (const proj of ["q_proj", "v_proj"]) {
      const path = `model.layers.${l}.self_attn.${proj}`;
      const w = weights.get(`${path}.weight`)!;
      const [out, inDim] = w.shape as [number, number];
      const a = Float32Array.from({ length: rank * inDim }, () => rng.uniform(-0.3, 0.3));
      const b = Float32Array.from({ length: out * rank }, () => rng.uniform(-0.3, 0.3));
      const m = Float32Array.from({ length: out }, () => rng.uniform(0.5, 1.5));
      Object.assign(tensors, { [`${path}.loraA`]: { dtype: "F32", shape: [rank, inDim], data: a }, [`${path}.loraB`]: { dtype: "F32", shape: [out, rank], data: b }, [`${path}.m`]: { dtype: "F32", shape: [out], data: m } });
      const v = new Float64Array(out * inDim);
      for (let o = 0; o < out; o++) {
        let norm = 0;
        for (let i = 0; i < inDim; i++) {
          let ba = 0;
          for (let r = 0; r < rank; r++) ba += b[o * rank + r]! * a[r * inDim + i]!;
          v[o * inDim + i] = w.data[o * inDim + i]! + s * ba;
          norm += v[o * inDim + i]! ** 2;
        }
        for (let i = 0; i < inDim; i++) v[o * inDim + i] = (m[o]! / Math.sqrt(norm)) * v[o * inDim + i]!;
      }
      merged.set(`${path}.weight`, { shape: [out, inDim], data: v });
    }
  }
  return { tensors, merged };
}

describe("dorafuse generate", () => {
  const rng = new Rng(20261207);
  const llama = { config: llamaConfig(), dir: "", weights: new Map() as Weights };
  const gpt2 = { config: gpt2Config({ vocab_size: 50257, bos_token_id: 50256, eos_token_id: 50256 }), dir: "", weights: new Map() as Weights };
  beforeAll(async () => {
    llama.weights = randomLlamaWeights(llama.config, { seed: 11, dtype: "BF16" });
    llama.dir = await tempDir();
    await writeHfFolder(llama.dir, llama.config, llama.weights, { dtype: "BF16" });
    gpt2.weights = randomGpt2Weights(gpt2.config, { seed: 12, dtype: "F32" });
    gpt2.dir = await tempDir();
    await writeHfFolder(gpt2.dir, gpt2.config, gpt2.weights, { dtype: "F32", prefix: false, buffers: true });
    await writeGpt2Tokenizer(gpt2.dir);
  });

  it("--ids --temperature 0 --json gives transformers' greedy continuation of a Llama folder, as one JSON object", async () => {
    const prompt = [5, 17, 3, 42, 8];
    const r = await dorafuse("generate", llama.dir, "--ids", prompt.join(","), "--temperature", "0", "--max-new-tokens", "12", "--dtype", "f32", "--json");
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[]; text?: string };
    expect(Object.keys(out)).toEqual(["ids"]); // no tokenizer: no text
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(out.ids).toEqual(greedy((ids) => llamaLogits(llama.config, llama.weights, ids), 97, prompt, 12, llama.config.eos_token_id as number));
  });

  it("--prompt encodes with the folder's tokenizer.json (GPT-2's real vocabulary) and decodes the continuation", async () => {
    const r = await dorafuse("generate", gpt2.dir, "--prompt", "Hello world", "--max-new-tokens", "6", "--json");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { ids: number[]; text: string };
    expect(out.ids).toEqual(greedy((ids) => gpt2Logits(gpt2.config, gpt2.weights, ids), 50257, [15496, 995], 6, 50256));
    const { decode } = await import("gpt-3-encoder");
    expect(out.text).toBe(decode(out.ids.filter((i) => i !== 50256)));
    // without --json the same text is streamed to stdout as it is produced
    const streamed = await dorafuse("generate", gpt2.dir, "--prompt", "Hello world", "--max-new-tokens", "6");
    expect(streamed.status).toBe(0);
    expect(streamed.stdout).toBe(`${out.text}\n`);
    expect(streamed.stderr).toMatch(/2 prompt tokens .* 6 new/);
  });

  it("a DoRA adapter applied unmerged, and merged with --merge, both give the greedy continuation of the merged weights", async () => {
    const { tensors, merged } = doraAdapter(llama.config, llama.weights, rng);
    const adapter = await tempDir();
    await exportPeftAdapter(adapter, { tensors, config: { lora_alpha: 8, r: 4, task_type: "CAUSAL_LM" } });
    const prompt = [9, 4, 60];
    const expected = greedy((ids) => llamaLogits(llama.config, merged, ids), 97, prompt, 8, llama.config.eos_token_id as number);
    expect(expected).not.toEqual(greedy((ids) => llamaLogits(llama.config, llama.weights, ids), 97, prompt, 8, llama.config.eos_token_id as number));
    for (const extra of [[], ["--merge"]]) {
      const r = await dorafuse("generate", llama.dir, "--ids", prompt.join(","), "--adapter", adapter, ...extra, "--max-new-tokens", "8", "--dtype", "f32", "--json");
      expect(r.stderr).not.toMatch(/Error/);
      expect(JSON.parse(r.stdout).ids, extra.join(" ") || "unmerged").toEqual(expected);
    }
  });

  it("sampling with a seed is reproducible from the command line", async () => {
    const args = ["generate", llama.dir, "--ids", "1,2,3", "--temperature", "1.2", "--top-k", "40", "--top-p", "0.9", "--max-new-tokens", "10", "--json"];
    const a = await dorafuse(...args, "--seed", "4");
    const b = await dorafuse(...args, "--seed", "4");
    const c = await dorafuse(...args, "--seed", "5");
    expect(JSON.parse(a.stdout).ids).toEqual(JSON.parse(b.stdout).ids);
    expect(JSON.parse(c.stdout).ids).not.toEqual(JSON.parse(a.stdout).ids);
  });

  it("a bad folder, a prompt longer than the context, an adapter for another base and a bad flag are one line and exit 2", async () => {
    const other = await tempDir();
    const small = llamaConfig({ hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1 });
    const { tensors } = doraAdapter(small, randomLlamaWeights(small, { seed: 2, dtype: "F32" }), rng);
    await exportPeftAdapter(other, { tensors, config: { lora_alpha: 8, r: 4 } });
    const cases: [string[], RegExp][] = [
      [["generate", join(llama.dir, "missing"), "--ids", "1"], /no such folder/],
      [["generate", root, "--ids", "1"], /no config\.json/],
      [["generate", llama.dir, "--ids", Array.from({ length: 64 }, () => "1").join(",")], /the prompt has 64 tokens; .* has a context of 64/],
      [["generate", llama.dir, "--ids", "1,2", "--adapter", other], /self_attn\.q_proj\.loraA is \[4, 16\], but the model's .* needs \[4, 32\] \(an adapter for another base\?\)/],
      [["generate", llama.dir, "--prompt", "hi"], /no tokenizer\.json .* give token ids with --ids/],
      [["generate", llama.dir, "--ids", "1", "--top-p", "2"], /top-p must be in \(0, 1\], found 2/],
      [["generate", llama.dir, "--ids", "1", "--dtype", "f64"], /--dtype must be f16 or f32/],
      [["generate", llama.dir, "--ids", "1", "--frobnicate"], /unknown --frobnicate/],
      [["generate", llama.dir, "--ids", "1", "--ids", "100"], /token id 100 is outside the vocabulary \(0…96\)/],
    ];
    for (const [args, pattern] of cases) {
      const r = await dorafuse(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stdout, args.join(" ")).toBe("");
      const lines = r.stderr.split("\n").filter((l) => l.startsWith("dorafuse"));
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(lines[0], args.join(" ")).toMatch(/^dorafuse generate: /);
      expect(lines[0], args.join(" ")).toMatch(pattern);
      expect(r.stderr, args.join(" ")).not.toMatch(/\n\s+at /);
    }
  });
});
