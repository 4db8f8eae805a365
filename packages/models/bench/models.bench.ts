// Generation benchmark: a tiny and a ~10M-parameter Llama (random weights, written as Hugging
// Face folders and loaded through loadModel), each with f32 and f16 frozen weights, side by
// side in one run: weight bytes, prefill tokens/s (a 128-token prompt), decode tokens/s with
// the KV cache, and decode by re-running the whole window for every token (what a sampler
// without a cache does: one compiled forward over a fixed window, the last row read).
//   node scripts/bench.mjs packages/models/bench/models.bench.ts [--quick]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evaluate, hostTensor, randomKey, spec } from "@dorafuse/core";
import { compile, fmtBytes } from "@dorafuse/compiler";
import { createDevice, type Tensor as GpuTensor } from "@dorafuse/runtime";
import { Generator, llama, loadModel, saveModel, type LlamaConfig, type LoadedModel, type WeightDType } from "@dorafuse/models";

const quick = process.argv.includes("--quick");
const RUNS = quick ? 2 : 5;
const PROMPT = 128;
const NEW = quick ? 16 : 48;
const CAPACITY = 256;

const base = { modelType: "llama", normEps: 1e-5, ropeTheta: 10000, attentionBias: false, outputBias: false, mlpBias: false, activation: "silu", tied: false, initStd: 0.05, eos: [], maxPositions: CAPACITY } as const;
const MODELS: [string, LlamaConfig][] = [
  ["tiny", { ...base, vocab: 256, dim: 64, hidden: 172, layers: 2, heads: 4, kvHeads: 2, headDim: 16 }],
  ["10M", { ...base, vocab: 8192, dim: 256, hidden: 688, layers: 8, heads: 8, kvHeads: 4, headDim: 32 }],
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const paramCount = (c: LlamaConfig) => c.vocab * c.dim * 2 + c.layers * (2 * c.dim * c.heads * c.headDim + 2 * c.dim * c.kvHeads * c.headDim + 3 * c.dim * c.hidden + 2 * c.dim) + c.dim;

interface Row { model: string; dtype: WeightDType; params: number; weightBytes: number; cacheBytes: number; prefill: number; decode: number; window: number }

const device = await createDevice();
console.log(`adapter: ${device.adapter.description || device.adapter.device}; ${RUNS} timed runs each (after one warm-up); prompt ${PROMPT} tokens, ${NEW} new, cache ${CAPACITY} positions`);
const rows: Row[] = [];
const dir = mkdtempSync(join(tmpdir(), "dorafuse-bench-models-"));
try {
  for (const [name, cfg] of MODELS) {
    const folder = join(dir, name);
    await saveModel(folder, llama, cfg, evaluate((k) => llama.init(k, cfg), [randomKey(1)]));
    for (const dtype of ["f32", "f16"] as const) {
      if (dtype === "f16" && !device.features.has("shader-f16")) continue;
      const model = await loadModel(folder, device, { dtype });
      const gen = await Generator.create(model, device, { capacity: CAPACITY });
      const prompt = Array.from({ length: PROMPT }, (_, i) => (i * 31 + 7) % cfg.vocab);
      const prefill: number[] = [];
      const decode: number[] = [];
      for (let r = 0; r <= RUNS; r++) {
        const g = await gen.generate(prompt, { maxNewTokens: NEW, stop: [] });
        if (r === 0) continue;
        prefill.push(PROMPT / g.prefillSeconds);
        decode.push((g.ids.length - 1) / g.decodeSeconds);
      }
      gen.dispose();
      const window = await windowDecode(model, prompt);
      rows.push({ model: name, dtype, params: paramCount(cfg), weightBytes: model.weights.bytes, cacheBytes: 2 * cfg.layers * cfg.kvHeads * CAPACITY * cfg.headDim * 4, prefill: median(prefill), decode: median(decode), window });
      console.error(`  ${name} ${dtype}: decode ${median(decode).toFixed(1)} tokens/s`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Tokens/s when every new token re-runs the forward over the whole window (no cache). */
async function windowDecode(model: LoadedModel, prompt: number[]): Promise<number> {
  const c = model.config;
  const buffers = model.family.buffers(c, CAPACITY);
  const fwd = (p: unknown, b: Record<string, never>, ids: never) => model.family.forward(p, b, ids, c);
  const f = await compile(fwd as never, [model.params, buffers, spec([1, CAPACITY], "i32")], { device });
  const ids = [...prompt, ...new Array<number>(CAPACITY - prompt.length).fill(0)];
  const times: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < NEW; i++) {
      const out = (await f(model.params, buffers, hostTensor([1, CAPACITY], ids, "i32"))) as unknown as GpuTensor;
      await out.read(); // a sampler reads the logits to choose the next token
      out.dispose();
    }
    if (r > 0) times.push(NEW / ((performance.now() - t0) / 1000));
  }
  f.dispose();
  return median(times);
}

const table = [
  ["model", "params", "weights", "weight bytes", "KV cache", "prefill tok/s", "decode tok/s (cache)", "decode tok/s (re-run window)", "cache speed-up"],
  ...rows.map((r) => [r.model, `${(r.params / 1e6).toFixed(2)}M`, r.dtype, fmtBytes(r.weightBytes), fmtBytes(r.cacheBytes), r.prefill.toFixed(0), r.decode.toFixed(1), r.window.toFixed(1), `${(r.decode / r.window).toFixed(1)}×`]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
console.log(table.map((row) => row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n"));
for (const [name] of MODELS) {
  const [f32, f16] = [rows.find((r) => r.model === name && r.dtype === "f32"), rows.find((r) => r.model === name && r.dtype === "f16")];
  if (!f32 || !f16) continue;
  console.log(`${name}: f16/f32 weight bytes ${(f16.weightBytes / f32.weightBytes).toFixed(2)}× (saves ${fmtBytes(f32.weightBytes - f16.weightBytes)}), prefill ${(f16.prefill / f32.prefill).toFixed(2)}×, decode ${(f16.decode / f32.decode).toFixed(2)}×; cache vs re-run window: f32 ${(f32.decode / f32.window).toFixed(1)}×, f16 ${(f16.decode / f16.window).toFixed(1)}×`);
}
device.dispose();
