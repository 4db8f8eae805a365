// DoRA benchmark: one linear layer of (batch, in, out, rank), side by side in one run —
//   fused DoRA (the DoRA rewrite and its kernels, schedule by the cost model),
//   DoRA by the general rules (the rewrite off: contraction groups fuse the composite),
//   DoRA with fusion off (the composite doraLinear traces, one kernel per primitive),
//   fused LoRA at the same rank, the plain linear layer (full fine-tuning: dW and dx),
//   and the same DoRA layer in TensorFlow.js's WebGPU backend on the same Dawn adapter
//   (PEFT's formulation, gradients through tf.grads, the norm detached as PEFT does).
// Forward and forward+backward (the loss Σ y⊙gy and its gradients for A, B, m and x; W and b for
// the plain layer) medians of wall time
// from submission until the device is idle, with every weight already on the GPU and nothing
// read back; dispatches per step and peak GPU memory from the plans. Every variant is checked
// against the others (and sampled outputs against float64) before anything is timed.
//   npm run bench:dora -- [--sizes 0,1] [--reps 5] [--no-tfjs]   (progress on stderr, the table at the end)
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { doraLinear, loraLinear, nn, spec, trace, valueAndGrad, type Graph, type Tensor } from "@dorafuse/core";
import { doraReport, fmtBytes, lowerGraph, targetOf, withDoraConfig, type LoweredGraph } from "@dorafuse/compiler";
import { createDevice, loadPlan, upload, type Device, type Executable, type Tensor as GpuTensor } from "@dorafuse/runtime";

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const SIZES: [number, number, number, number][] = [[64, 512, 512, 8], [256, 1024, 1024, 16], [512, 2048, 2048, 16], [2048, 2048, 2048, 64]];
const pick = (arg("sizes") ?? "0,1,2,3").split(",").map(Number);
const REPS = Number(arg("reps") ?? 5);
const TFJS = !process.argv.includes("--no-tfjs");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const floats = (n: number, scale = 1) => Float32Array.from({ length: n }, () => rand() * scale);

type F = Tensor<number[], "f32">;
interface Layer {
  batch: number;
  inDim: number;
  out: number;
  rank: number;
  data: Record<"w" | "b" | "loraA" | "loraB" | "m" | "x" | "gy", Float32Array>;
}

function layer([batch, inDim, out, rank]: [number, number, number, number]): Layer {
  const w = floats(out * inDim, 1 / Math.sqrt(inDim));
  // a trained adapter: B nonzero, m near the row norms of W
  const m = Float32Array.from({ length: out }, (_, o) => Math.hypot(...w.subarray(o * inDim, (o + 1) * inDim)) * (1 + 0.1 * rand()));
  return { batch, inDim, out, rank, data: { w, b: floats(out, 0.1), loraA: floats(rank * inDim, 1 / Math.sqrt(inDim)), loraB: floats(out * rank, 0.05), m, x: floats(batch * inDim), gy: floats(batch * out) } };
}

// ---- the layers as dorafuse functions --------------------------------------------------------

type Kind = "dora" | "lora" | "linear";
const apply = (kind: Kind, L: Layer, p: Record<string, F>, x: F): F => {
  const opts = { rank: L.rank, alpha: 2 * L.rank };
  if (kind === "dora") return doraLinear.apply(p as never, x as never, opts) as F;
  if (kind === "lora") return loraLinear.apply(p as never, x as never, opts) as F;
  return nn.linear.apply(p as never, x as never) as F;
};
/** Trainable leaves: the adapter (DoRA: A, B, m; LoRA: A, B), or W and b for the plain layer. */
const TRAIN: Record<Kind, string[]> = { dora: ["loraA", "loraB", "m"], lora: ["loraA", "loraB"], linear: ["w", "b"] };
const LEAVES: Record<Kind, string[]> = { dora: ["w", "b", "loraA", "loraB", "m"], lora: ["w", "b", "loraA", "loraB"], linear: ["w", "b"] };

function shapes(L: Layer): Record<string, number[]> {
  return { w: [L.out, L.inDim], b: [L.out], loraA: [L.rank, L.inDim], loraB: [L.out, L.rank], m: [L.out], x: [L.batch, L.inDim], gy: [L.batch, L.out] };
}

/** The forward, or forward + backward, graph; inputs: frozen.*, train.*, x (, gy). */
function graphOf(kind: Kind, L: Layer, backward: boolean): Graph {
  const sh = shapes(L);
  const tree = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, spec(sh[k]!)]));
  const frozen = tree(LEAVES[kind].filter((k) => !TRAIN[kind].includes(k)));
  const train = tree(TRAIN[kind]);
  const loss = (t: Record<string, F>, x: F, fz: Record<string, F>, gy: F) => apply(kind, L, { ...fz, ...t }, x).mul(gy).sum();
  if (!backward) return trace((fz: never, t: never, x: never) => apply(kind, L, { ...(fz as object), ...(t as object) } as never, x), [frozen, train, spec(sh.x!)] as never, { names: ["frozen", "train", "x"] }).graph;
  // as a training step: the loss value and the gradients
  return trace((fz: never, t: never, x: never, gy: never) => {
    const [value, [gt, gx]] = valueAndGrad(loss, { argnums: [0, 1] })(t, x, fz, gy);
    return [value, TRAIN[kind].map((k) => (gt as Record<string, F>)[k]), gx];
  }, [frozen, train, spec(sh.x!), spec(sh.gy!)] as never, { names: ["frozen", "train", "x", "gy"] }).graph;
}

interface Compiled {
  lowered: LoweredGraph;
  exe: Executable;
  inputs: Record<string, GpuTensor>;
}

const dataKey = (name: string) => name.split(".").pop() as keyof Layer["data"];
const isParam = (name: string) => name.startsWith("frozen.") || name.startsWith("train.");

/** Lowers a graph with its parameters as state (written once, never moved), so a run uploads nothing. */
function lower(device: Device, g: Graph, fusion: boolean): LoweredGraph {
  const params = g.inputs.filter((n) => isParam(String(n.attrs.name)));
  // each parameter is also an output returning it unchanged: state that stays where it is
  const graph: Graph = { ...g, outputs: [...g.outputs, ...params] };
  const state = params.map((n, i) => ({ input: g.inputs.indexOf(n), output: g.outputs.length + i }));
  return lowerGraph(graph, { target: targetOf(device), fusion, state });
}

async function load(device: Device, lowered: LoweredGraph, L: Layer): Promise<Compiled> {
  const exe = await loadPlan(device, lowered.plan);
  const sh = shapes(L);
  const inputs: Record<string, GpuTensor> = {};
  for (const [i, n] of lowered.graph.inputs.entries()) {
    const name = String(n.attrs.name);
    const k = dataKey(name);
    if (isParam(name)) await exe.writeState(lowered.inputNames[i]!, L.data[k]);
    else inputs[lowered.inputNames[i]!] = upload(device, L.data[k], { shape: sh[k]!, dtype: "f32", name });
  }
  return { lowered, exe, inputs };
}

async function readOutputs(c: Compiled): Promise<Float32Array[]> {
  const r = await c.exe.run(c.inputs);
  const all = await r.readAll();
  return c.lowered.plan.outputs.map((o) => all[o.name] as Float32Array);
}

async function timeRuns(device: Device, c: Compiled): Promise<{ wall: number; gpu: number }> {
  const walls: number[] = [];
  const gpus: number[] = [];
  for (let r = 0; r < REPS + 1; r++) {
    const t = performance.now();
    const res = await c.exe.run(c.inputs);
    await device.gpu.queue.onSubmittedWorkDone();
    const wall = performance.now() - t;
    for (const o of Object.values(res.outputs)) o.dispose();
    if (r > 0) walls.push(wall);
  }
  for (let r = 0; r < Math.min(REPS, 3); r++) {
    const res = await c.exe.run(c.inputs, { profile: true });
    gpus.push(res.profile!.totalNs / 1e6);
    for (const o of Object.values(res.outputs)) o.dispose();
  }
  return { wall: median(walls), gpu: median(gpus) };
}

// ---- TensorFlow.js, PEFT's formulation ---------------------------------------------------

type TF = typeof import("@tensorflow/tfjs");
let tf: TF | undefined;

async function loadTf(): Promise<TF> {
  // the same Dawn build and adapter dorafuse uses (the webgpu package the runtime depends on)
  const req = createRequire(fileURLToPath(import.meta.resolve("@dorafuse/runtime")));
  const { create, globals } = req("webgpu") as { create: (o: string[]) => GPU; globals: Record<string, unknown> };
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  (globalThis as { navigator?: unknown }).navigator = { gpu: create([]) };
  const t = await import("@tensorflow/tfjs");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await t.setBackend("webgpu"))) throw new Error("tfjs: the webgpu backend did not initialize");
  return t;
}

function tfLayer(t: TF, L: Layer) {
  const sh = shapes(L);
  const v = Object.fromEntries(Object.entries(L.data).map(([k, d]) => [k, t.tensor(d, sh[k]!, "float32")])) as Record<keyof Layer["data"], import("@tensorflow/tfjs").Tensor>;
  const s = 2;
  const tt = t as unknown as Record<string, (...a: unknown[]) => import("@tensorflow/tfjs").Tensor>;
  // PEFT: weight = W + s·B·A; ‖weight‖ per row, detached; y = base + b + (g − 1)·base + g·s·lora
  const norm = (A: unknown, B: unknown) => tt.norm!(tt.add!(v.w, tt.mul!(tt.matMul!(B, A), s)), "euclidean", 1);
  const forward = (A: unknown, B: unknown, m: unknown, x: unknown, n: unknown) => {
    const base = tt.matMul!(x, v.w, false, true);
    const lora = tt.matMul!(tt.matMul!(x, A, false, true), B, false, true);
    const g = tt.div!(m, n);
    return tt.add!(tt.add!(base, v.b), tt.add!(tt.mul!(tt.sub!(g, 1), base), tt.mul!(g, tt.mul!(lora, s))));
  };
  const fwd = () => forward(v.loraA, v.loraB, v.m, v.x, norm(v.loraA, v.loraB));
  const step = () => {
    const n = norm(v.loraA, v.loraB);
    const grads = t.grads((A, B, m, x) => tt.sum!(tt.mul!(forward(A, B, m, x, n), v.gy)))([v.loraA, v.loraB, v.m, v.x]);
    n.dispose();
    return grads;
  };
  const bytes = Object.values(v).reduce((a, x) => a + x.size * 4, 0);
  return { fwd, step, bytes, dispose: () => Object.values(v).forEach((x) => x.dispose()) };
}

async function tfTime(t: TF, f: () => unknown): Promise<number> {
  const be = t.backend() as unknown as { ensureCommandEncoderReady(): void; endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice };
  const times: number[] = [];
  for (let r = 0; r < REPS + 1; r++) {
    const at = performance.now();
    const out = f();
    // what the backend does before reading back: close the open pass, submit its commands
    be.ensureCommandEncoderReady();
    be.endComputePassEncoder();
    be.submitQueue();
    await be.device.queue.onSubmittedWorkDone();
    if (r > 0) times.push(performance.now() - at);
    t.dispose(out as never);
  }
  return median(times);
}

// ---- checks ------------------------------------------------------------------------------

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) (num += (a[i]! - b[i]!) ** 2), (den += b[i]! ** 2);
  return Math.sqrt(num / (den || 1));
};

/** y at a few sampled elements in float64, for each layer kind. */
function sampledReference(kind: Kind, L: Layer, y: Float32Array): number {
  const { w, b, loraA, loraB, m, x } = L.data;
  const { inDim: I, out: O, rank: R } = L;
  const s = 2;
  let worst = 0;
  for (let t = 0; t < 32; t++) {
    const i = Math.floor(((rand() + 1) / 2) * L.batch);
    const o = Math.floor(((rand() + 1) / 2) * O);
    let base = 0;
    for (let k = 0; k < I; k++) base += x[i * I + k]! * w[o * I + k]!;
    let lora = 0;
    for (let l = 0; l < R && kind !== "linear"; l++) {
      let xa = 0;
      for (let k = 0; k < I; k++) xa += x[i * I + k]! * loraA[l * I + k]!;
      lora += xa * loraB[o * R + l]!;
    }
    let want = base + b[o]! + s * lora;
    if (kind === "dora") {
      let n2 = 0;
      for (let k = 0; k < I; k++) {
        let v = w[o * I + k]!;
        for (let l = 0; l < R; l++) v += s * loraB[o * R + l]! * loraA[l * I + k]!;
        n2 += v * v;
      }
      want = b[o]! + (m[o]! / Math.sqrt(n2 + 1e-12)) * (base + s * lora);
    }
    worst = Math.max(worst, Math.abs(y[i * O + o]! - want) / (Math.abs(want) + 1e-3));
  }
  return worst;
}

// ---- the run ----------------------------------------------------------------------------

const device = await createDevice();
if (TFJS) tf = await loadTf();
console.log(`adapter: ${device.adapter.description || device.adapter.device}; ${REPS} timed runs each (after one warm-up)\n`);
const rows: string[][] = [["(batch, in, out, rank)", "variant", "fwd ms", "fwd GPU ms", "fwd+bwd ms", "f+b GPU ms", "dispatches f / f+b", "peak memory f+b"]];
const ratios: string[] = [];
const notes: string[] = [];

for (const idx of pick) {
  const L = layer(SIZES[idx]!);
  const tag = `(${L.batch}, ${L.inDim}, ${L.out}, ${L.rank})`;
  const results = new Map<string, { f: number; fb: number }>();
  const outputs = new Map<string, Float32Array[]>();
  const variants: [string, Kind, boolean, boolean][] = [["fused DoRA", "dora", true, true], ["DoRA, general rules", "dora", true, false], ["DoRA, fusion off", "dora", false, false], ["fused LoRA", "lora", true, true], ["plain linear", "linear", true, true]];
  for (const [name, kind, fusion, rewrite] of variants) {
    // fusion off: the DoRA rewrite off too, so the composite runs one kernel per primitive
    const lowered = withDoraConfig({ enabled: rewrite }, () => [false, true].map((bwd) => lower(device, graphOf(kind, L, bwd), fusion)));
    const compiled = [await load(device, lowered[0]!, L), await load(device, lowered[1]!, L)];
    const [cf, cb] = compiled as [Compiled, Compiled];
    const yf = (await readOutputs(cf))[0]!;
    outputs.set(name, [yf, ...(await readOutputs(cb)).slice(1)]);
    const worst = sampledReference(kind, L, yf);
    if (!(worst < 2e-3)) throw new Error(`${name} ${tag}: y differs from float64 by ${worst.toExponential(2)} at a sampled element`);
    const f = await timeRuns(device, cf);
    const fb = await timeRuns(device, cb);
    results.set(name, { f: f.wall, fb: fb.wall });
    const t = cb.lowered.totals;
    rows.push([tag, name, f.wall.toFixed(2), f.gpu.toFixed(2), fb.wall.toFixed(2), fb.gpu.toFixed(2), `${cf.lowered.totals.dispatches} / ${t.dispatches}`, fmtBytes(t.peakBytes)]);
    console.error(`  ${rows.at(-1)!.join("  ")}`);
    if (kind === "dora" && rewrite) {
      const r = doraReport(cb.lowered)[0]!;
      notes.push(`${tag}: ${r.schedule} schedule (${r.why}); forward ${r.forward.length} dispatch(es), backward ${r.backward.length}; tensors shaped like W: ${r.weightSized.length ? r.weightSized.join(", ") : "none"}`);
    }
    for (const c of compiled) c.exe.dispose();
  }
  // the DoRA variants agree: y, dA, dB, dm, dx
  const [fused, unfused] = [outputs.get("fused DoRA")!, outputs.get("DoRA, fusion off")!];
  const names = ["y", "dA", "dB", "dm", "dx"];
  const check = (a: Float32Array[], b: Float32Array[], what: string) => {
    const errs = names.map((n, i) => [n, relErr(a[i]!, b[i]!)] as const);
    const bad = errs.find(([, e]) => !(e < 1e-3));
    if (bad) throw new Error(`${tag}: ${what} disagree on ${bad[0]} (relative error ${bad[1].toExponential(2)})`);
    return errs.map(([n, e]) => `${n} ${e.toExponential(1)}`).join(", ");
  };
  notes.push(`${tag}: fused vs fusion off: ${check(fused, unfused, "fused and unfused DoRA")}`);
  notes.push(`${tag}: general rules vs fusion off: ${check(outputs.get("DoRA, general rules")!, unfused, "DoRA by the general rules and unfused DoRA")}`);
  if (tf) {
    const T = tfLayer(tf, L);
    const y = (await (T.fwd() as import("@tensorflow/tfjs").Tensor).data()) as Float32Array;
    const g = T.step() as import("@tensorflow/tfjs").Tensor[];
    const tfOut = [y, ...(await Promise.all(g.map((x) => x.data() as Promise<Float32Array>)))];
    notes.push(`${tag}: TensorFlow.js vs fused: ${check(tfOut, fused, "TensorFlow.js and fused DoRA")}`);
    const f = await tfTime(tf, T.fwd);
    const fb = await tfTime(tf, T.step);
    const pf = await tf.profile(() => T.fwd() as never);
    const pb = await tf.profile(() => T.step() as never);
    results.set("tfjs", { f, fb });
    rows.push([tag, "TensorFlow.js DoRA (webgpu)", f.toFixed(2), "–", fb.toFixed(2), "–", `${pf.kernels.length} / ${pb.kernels.length}`, fmtBytes(T.bytes + pb.peakBytes)]);
    console.error(`  ${rows.at(-1)!.join("  ")}`);
    tf.dispose([pf.result, pb.result] as never);
    T.dispose();
  }
  const d = results.get("fused DoRA")!;
  const lo = results.get("fused LoRA")!;
  const un = results.get("DoRA, fusion off")!;
  const gen = results.get("DoRA, general rules")!;
  const t = results.get("tfjs");
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  ratios.push(
    `${tag}: DoRA/LoRA fwd ${x(d.f, lo.f)}, f+b ${x(d.fb, lo.fb)} (goal ≤ 1.10) · fused/unfused speed-up fwd ${x(un.f, d.f)}, f+b ${x(un.fb, d.fb)} (goal ≥ 3×)` +
      ` · general rules/fused fwd ${x(gen.f, d.f)}, f+b ${x(gen.fb, d.fb)}` +
      (t ? ` · dorafuse/tfjs speed-up fwd ${x(t.f, d.f)}, f+b ${x(t.fb, d.fb)} (goal ≥ 5×)` : ""),
  );
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
console.log("");
for (const r of ratios) console.log(r);
console.log("");
for (const n of notes) console.log(n);
device.dispose();
process.exit(0);
