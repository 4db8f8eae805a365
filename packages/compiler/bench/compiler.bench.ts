// Compiler benchmark: the training step of an MLP and of a 2-block transformer LM, compiled
// with fusion and without, side by side in one run: kernels and dispatches per step, bytes the
// kernels move, step time (median), and compile time cold (fresh device and cache) and cached.
//   node scripts/bench.mjs packages/compiler/bench/compiler.bench.ts [--quick]
import { crossEntropy, evaluate, flatten, HostTensor, mse, nn, randomKey, Tensor, unflatten, valueAndGrad } from "@dorafuse/core";
import { clearCompileCache, compile, fmtBytes, type CompiledFunction } from "@dorafuse/compiler";
import { createDevice, type Tensor as GpuTensor } from "@dorafuse/runtime";

const quick = process.argv.includes("--quick");
const steps = quick ? 5 : 15;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const isTracer = (v: unknown): v is Tensor => v instanceof Tensor;
function sgd<T>(params: T, grads: unknown, lr: number): T {
  const [ps, def] = flatten(params, isTracer);
  const [gs] = flatten(grads, isTracer);
  return unflatten(def, ps.map((p, i) => (p as Tensor<number[], "f32">).sub((gs[i] as Tensor<number[], "f32">).mul(lr))));
}

let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const floats = (shape: number[]) => new HostTensor(shape, Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand), "f32");
const ints = (shape: number[], n: number) => new HostTensor(shape, Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.floor(((rand() + 1) / 2) * n)), "i32");

interface Model {
  name: string;
  params: () => unknown;
  batch: () => HostTensor[];
  loss: (p: never, a: never, b: never) => Tensor;
}

const LM = { vocab: 64, dim: 64, heads: 4, hidden: 128, layers: 2, maxSeq: 32 } as const;
const MODELS: Model[] = [
  {
    name: "MLP 64→256→64, batch 8×16",
    params: () => evaluate((k) => nn.mlp.init(k, { dim: 64, hidden: 256 }), [randomKey(0)]),
    batch: () => [floats([8, 16, 64]), floats([8, 16, 64])],
    loss: (p, x, y) => mse(nn.mlp.apply(p as never, x as never) as never, y as never) as Tensor,
  },
  {
    name: "transformer LM, 2 blocks, d=64, batch 4×32",
    params: () => evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(0)]),
    batch: () => [ints([4, 32], LM.vocab), ints([4, 32], LM.vocab)],
    loss: (p, ids, labels) => crossEntropy(nn.transformerLM.apply(p as never, ids as never, { heads: LM.heads }) as never, labels as never) as Tensor,
  },
];

const stepOf = (m: Model) => (p: never, a: never, b: never) => {
  const [loss, grads] = valueAndGrad((q: never, x: never, y: never) => m.loss(q, x, y))(p, a, b);
  return { params: sgd(p, grads, 0.01), loss };
};

interface Result {
  kernels: number;
  dispatches: number;
  bytes: number;
  peak: number;
  stepMs: number;
  coldMs: number;
  cachedMs: number;
}

async function measure(m: Model, fusion: boolean): Promise<Result> {
  clearCompileCache();
  const device = await createDevice();
  const params = m.params();
  const batch = m.batch();
  let t = performance.now();
  const c: CompiledFunction = await compile(stepOf(m), [params, ...batch], { device, fusion, state: { params: 0 } });
  const coldMs = performance.now() - t;
  t = performance.now();
  const again = await compile(stepOf(m), [params, ...batch], { device, fusion, state: { params: 0 } });
  const cachedMs = performance.now() - t;
  again.dispose();
  const times: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    t = performance.now();
    const out = (await c(...batch)) as { loss: GpuTensor };
    await out.loss.read();
    out.loss.dispose();
    if (i >= 2) times.push(performance.now() - t);
  }
  const { totals } = c.lowered;
  c.dispose();
  device.dispose();
  return { kernels: totals.kernels, dispatches: totals.dispatches, bytes: totals.bytesRead + totals.bytesWritten, peak: totals.peakBytes, stepMs: median(times), coldMs, cachedMs };
}

const rows: string[][] = [["model", "fusion", "kernels", "dispatches/step", "bytes moved", "peak memory", "step ms (median)", "compile cold ms", "compile cached ms"]];
const ratios: string[] = [];
for (const m of MODELS) {
  const on = await measure(m, true);
  const off = await measure(m, false);
  for (const [label, r] of [["on", on], ["off", off]] as const) {
    rows.push([m.name, label, String(r.kernels), String(r.dispatches), fmtBytes(r.bytes), fmtBytes(r.peak), r.stepMs.toFixed(2), r.coldMs.toFixed(0), r.cachedMs.toFixed(1)]);
  }
  ratios.push(
    `${m.name}: fusion cuts dispatches ${(off.dispatches / on.dispatches).toFixed(1)}×, bytes moved ${(off.bytes / on.bytes).toFixed(1)}×, step time ${(off.stepMs / on.stepMs).toFixed(2)}×; cached compile ${(on.coldMs / on.cachedMs).toFixed(0)}× faster than cold`,
  );
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
console.log("");
for (const r of ratios) console.log(r);
