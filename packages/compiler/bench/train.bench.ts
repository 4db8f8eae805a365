// Training benchmark: one small transformer LM (its projections written with applyLinear, so
// the same model trains fully, with LoRA, or with DoRA on its attention and MLP projections),
// trained with AdamW through trainStep, the three methods side by side in one run:
// step time (median, waiting for each step), tokens/s (steps queued back to back), dispatches
// per step, peak GPU memory (the plan's, and the device's measured peak), compile time in
// process (trace, lower, create the pipelines, load), and ahead-of-time compile time
// (`compileModule` on this file, which exports the three steps as entries: trace, lower,
// write the module, manifest, WGSL and initial checkpoint).
//   node scripts/bench.mjs packages/compiler/bench/train.bench.ts [--quick]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adamw, adapt, adapterMask, applyLinear, crossEntropy, embedding, evaluate, gelu, HostTensor, iota, layerNorm, multiHeadAttention, nn, randomKey, spec, splitKey, type Tensor } from "@dorafuse/core";
import { clearCompileCache, compileModule, defineTrainStep, fmtBytes, trainStep, type StepContext, type TrainEntry } from "@dorafuse/compiler";
import { createDevice } from "@dorafuse/runtime";

const LM = { vocab: 256, dim: 128, heads: 4, hidden: 512, layers: 2, maxSeq: 64 } as const;
const BATCH = 8;
const SEQ = 64;
const RANK = 8;
const TARGETS = ["q", "k", "v", "o", "up", "down"];

type F = Tensor<number[], "f32">;
type Params = ReturnType<typeof nn.transformerLM.init<256, 128, 512, 64>>;
const adapterOpts = { rank: RANK, alpha: 2 * RANK, dropout: 0 };

function loss(p: Params, batch: { ids: Tensor<[number, number], "i32">; targets: Tensor<[number, number], "i32"> }, ctx: StepContext) {
  const keys = splitKey(ctx.key, 6 * p.blocks.length);
  let next = 0;
  const proj = (layer: unknown, x: F): F => applyLinear(layer as never, x as never, adapterOpts, { key: keys[next++]! }) as F;
  let x = (embedding(p.tokens.table as never, batch.ids as never) as F).add(embedding(p.positions.table as never, iota([SEQ], 0) as never) as F);
  for (const b of p.blocks) {
    const h = layerNorm(x as never, b.ln1.gamma as never, b.ln1.beta as never) as F;
    x = x.add(proj(b.attn.o, multiHeadAttention(proj(b.attn.q, h) as never, proj(b.attn.k, h) as never, proj(b.attn.v, h) as never, LM.heads, { causal: true }) as F));
    const m = layerNorm(x as never, b.ln2.gamma as never, b.ln2.beta as never) as F;
    x = x.add(proj(b.mlp.down, gelu(proj(b.mlp.up, m) as never) as F));
  }
  const logits = applyLinear(p.head as never, layerNorm(x as never, p.lnf.gamma as never, p.lnf.beta as never) as never, adapterOpts) as F;
  return crossEntropy(logits as never, batch.targets as never) as Tensor<[], "f32">;
}

const base = evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(0)]);
const batchSpec = { ids: spec([BATCH, SEQ], "i32"), targets: spec([BATCH, SEQ], "i32") };

function entry(kind: "full" | "lora" | "dora"): TrainEntry {
  if (kind === "full") return defineTrainStep(loss as never, adamw({ lr: 1e-3, weightDecay: 0.01 }), { params: base, batch: batchSpec }) as TrainEntry;
  const cfg = { kind, targets: TARGETS, ...adapterOpts };
  const params = evaluate((k, p) => adapt(k, p, cfg).params, [randomKey(1), base]);
  const trainable = adapterMask(params);
  return defineTrainStep(loss as never, adamw({ lr: 1e-3, weightDecay: 0.01, mask: trainable }), { params, batch: batchSpec, trainable, adapter: cfg }) as TrainEntry;
}

export const full = entry("full");
export const lora = entry("lora");
export const dora = entry("dora");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Result {
  trainable: number;
  dispatches: number;
  planPeak: number;
  devicePeak: number;
  compileMs: number;
  aotMs: number;
  stepMs: number;
  tokensPerSecond: number;
  loss: [number, number];
}

async function measure(name: "full" | "lora" | "dora", e: TrainEntry, steps: number): Promise<Result> {
  const out = mkdtempSync(join(tmpdir(), "dorafuse-bench-"));
  const device = await createDevice();
  clearCompileCache();
  let t = performance.now();
  await compileModule({ file: fileURLToPath(import.meta.url), entry: name, out, device });
  const aotMs = performance.now() - t;
  rmSync(out, { recursive: true, force: true });
  clearCompileCache();
  t = performance.now();
  const train = await trainStep(e.loss, e.optimizer, { ...e.options, device });
  const compileMs = performance.now() - t;
  let seed = 7;
  const tokens = () => new HostTensor([BATCH, SEQ], Float64Array.from({ length: BATCH * SEQ }, () => (seed = (seed * 1103515245 + 12345) >>> 0) % LM.vocab), "i32");
  const batches = Array.from({ length: 4 }, () => ({ ids: tokens(), targets: tokens() }));
  const first = await (await train.step(batches[0]!)).loss;
  for (let i = 1; i < 3; i++) await (await train.step(batches[i % 4]!)).loss;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    t = performance.now();
    await (await train.step(batches[i % 4]!)).loss;
    times.push(performance.now() - t);
  }
  t = performance.now();
  const queued = [];
  for (let i = 0; i < steps; i++) queued.push((await train.step(batches[i % 4]!)).loss);
  const losses = await Promise.all(queued);
  const tokensPerSecond = (steps * BATCH * SEQ) / ((performance.now() - t) / 1000);
  const trainable = train.program.manifest.state.filter((s) => s.role === "optimizer" && s.key.startsWith("opt.mu.")).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const result = {
    trainable,
    dispatches: train.lowered.totals.dispatches,
    planPeak: train.lowered.totals.peakBytes,
    devicePeak: device.memory.peakBytes,
    compileMs,
    aotMs,
    stepMs: median(times),
    tokensPerSecond,
    loss: [first, losses.at(-1)!] as [number, number],
  };
  train.dispose();
  device.dispose();
  return result;
}

// No top-level await: compileModule imports this file for its entries, which would wait forever
// on a module still evaluating.
async function main(): Promise<void> {
  const steps = process.argv.includes("--quick") ? 4 : 12;
  const device = await createDevice();
  console.log(`transformer LM: ${LM.layers} blocks, d=${LM.dim}, ${LM.heads} heads, MLP ${LM.hidden}, vocab ${LM.vocab}; batch ${BATCH}×${SEQ} tokens; AdamW; adapters rank ${RANK} on ${TARGETS.join(", ")}`);
  console.log(`adapter: ${device.describe()}; ${steps} timed steps per method\n`);
  device.dispose();
  const methods = [["full", full], ["lora", lora], ["dora", dora]] as const;
  const results = new Map<string, Result>();
  for (const [name, e] of methods) results.set(name, await measure(name, e, steps));
  const rows = [["method", "trainable", "dispatches/step", "plan peak", "device peak", "step ms (median)", "tokens/s", "compile+load ms", "AOT compile ms", "loss first→last"]];
  for (const [name, r] of results) {
    rows.push([name, r.trainable.toLocaleString("en"), String(r.dispatches), fmtBytes(r.planPeak), fmtBytes(r.devicePeak), r.stepMs.toFixed(1), r.tokensPerSecond.toFixed(0), r.compileMs.toFixed(0), r.aotMs.toFixed(0), `${r.loss[0].toFixed(3)}→${r.loss[1].toFixed(3)}`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  const [f, l, d] = [results.get("full")!, results.get("lora")!, results.get("dora")!];
  console.log("");
  console.log(`DoRA / LoRA: step time ${(d.stepMs / l.stepMs).toFixed(2)}×, tokens/s ${(d.tokensPerSecond / l.tokensPerSecond).toFixed(2)}×, dispatches ${(d.dispatches / l.dispatches).toFixed(2)}×, plan peak memory ${(d.planPeak / l.planPeak).toFixed(2)}×`);
  console.log(`DoRA / full: step time ${(d.stepMs / f.stepMs).toFixed(2)}×, tokens/s ${(d.tokensPerSecond / f.tokensPerSecond).toFixed(2)}×, plan peak memory ${(d.planPeak / f.planPeak).toFixed(2)}×, trainable parameters ${(d.trainable / f.trainable).toFixed(3)}×`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
