// The training and evaluation steps as pure traced functions — what trainStep and evalStep
// compile into ONE graph each, and what a test runs in the interpreter to check them:
//
//   train(params, opt, step, key, batch) → { params, opt, step: step + 1, key, stats }
//   eval(params, batch)                 → { params, stats }
//
// `stats` is one f32 vector [loss, ...metrics] (metrics in sorted-name order), so a step
// reads back a single small buffer. With `accumulate: k` the batch carries a leading axis of
// k micro-batches; the graph runs forward and backward on each in turn and averages losses,
// metrics and gradients before the one optimizer update: the step equals a step on the
// concatenated batch when the loss is a mean over equally sized micro-batches. Dropout keys
// are folded from the step counter (and the micro-batch index), so they never repeat and a
// resumed run draws exactly what an uninterrupted one would.
import { concat, flatten, foldIn, keyFromSeed, scalar, Tensor, unflatten, valueAndGrad, type DType, type Key, type Mask, type Optimizer, type OptState } from "@dorafuse/core";
import { CompileError } from "../errors.js";

export interface StepContext {
  /** This step's key (this micro-batch's, when accumulating): split or fold it for each random draw. */
  readonly key: Key;
  /** Steps completed before this one (i32 scalar). */
  readonly step: Tensor<[], "i32">;
  /** false in evalStep: run layers deterministically (`{ deterministic: !ctx.training }`). */
  readonly training: boolean;
}

export type ScalarF32 = Tensor<[], "f32">;

/** A loss, or a loss with scalar metrics (averaged like the loss, read back with it). */
export type LossOutput = ScalarF32 | { readonly loss: ScalarF32; readonly metrics?: Readonly<Record<string, Tensor<[], DType>>> };

// `any` by default so a loss over a concrete parameter type is a LossFn (parameters are contravariant).
export type LossFn<P = any, B = any> = (params: P, batch: B, ctx: StepContext) => LossOutput;

export interface TrainFunctionOptions {
  /** valueAndGrad's mask over the parameters (keys left out are frozen). Default: every float leaf trains. */
  readonly trainable?: Mask;
  /** Micro-batches per step (the batch gains a leading axis of this size). Default 1. */
  readonly accumulate?: number;
}

export interface StepOutputs {
  params: unknown;
  opt: OptState;
  step: Tensor<[], "i32">;
  key: Key;
  stats: Tensor<[number], "f32">;
}

/** A step function with the names of its metrics (known once it has been traced). */
export interface StepFunction<A extends unknown[], R> {
  (...args: A): R;
  readonly metrics: readonly string[];
}

type Wide = Tensor<number[], "f32">;
const isTensor = (v: unknown): v is Tensor => v instanceof Tensor;

function split(out: LossOutput): [ScalarF32, Record<string, Tensor>] {
  if (out instanceof Tensor) return [out, {}];
  if (typeof out !== "object" || out === null || !(out.loss instanceof Tensor)) {
    throw new CompileError(`the loss function must return a scalar tensor or { loss, metrics }, found ${out === null ? "null" : typeof out}`, "trainStep");
  }
  return [out.loss, { ...(out.metrics ?? {}) }];
}

/** [loss, ...metrics] as one f32 vector; every metric must be a scalar. */
function pack(loss: ScalarF32, metrics: Record<string, Tensor>, names: readonly string[]): Tensor<[number], "f32"> {
  const parts = [loss, ...names.map((n) => {
    const m = metrics[n]!;
    if (m.shape.length !== 0) throw new CompileError(`metric "${n}" must be a scalar, found ${m.dtype}[${m.shape.join(",")}]`, "trainStep");
    return m.dtype === "f32" ? m : m.cast("f32");
  })];
  return concat(parts.map((p) => (p as Wide).reshape([1])) as never, 0) as never;
}

function checkNames(names: string[], found: readonly string[]): void {
  if (names.length === 0) names.push(...found);
  else if (names.join() !== found.join()) throw new CompileError(`the loss returned metrics [${found.join(", ")}], earlier [${names.join(", ")}]; every call must return the same metrics`, "trainStep");
}

/** Micro-batch `i` of a batch whose leaves have a leading axis of micro-batches. */
function microBatch(batch: unknown, i: number): unknown {
  const [leaves, def] = flatten(batch, isTensor);
  return unflatten(def, leaves.map((x) => (x as Wide).slice([[i, i + 1]]).reshape(x.shape.slice(1) as never)));
}

/** Leaf-wise sum of gradient trees (frozen leaves stay null). */
function addTrees(a: unknown, b: unknown): unknown {
  const [xs, def] = flatten(a, isTensor);
  const [ys] = flatten(b, isTensor);
  return unflatten(def, xs.map((x, i) => (x as Wide).add(ys[i] as Wide)));
}

function scaleTree(a: unknown, s: number): unknown {
  const [xs, def] = flatten(a, isTensor);
  return unflatten(def, xs.map((x) => (x as Wide).mul(s)));
}

export function checkAccumulate(accumulate: number | undefined): number {
  const k = accumulate ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new CompileError(`accumulate must be a positive integer (micro-batches per step), found ${accumulate}`, "trainStep");
  return k;
}

/** The training step as a pure function (see the top of this file). */
export function trainFunction(loss: LossFn, optimizer: Optimizer, options: TrainFunctionOptions = {}): StepFunction<[unknown, OptState, Tensor<[], "i32">, Key, unknown], StepOutputs> {
  const accumulate = checkAccumulate(options.accumulate);
  const metrics: string[] = [];
  const withAux = (p: unknown, b: unknown, ctx: StepContext) => split(loss(p, b, ctx));
  const fn = (params: unknown, opt: OptState, step: Tensor<[], "i32">, key: Key, batch: unknown): StepOutputs => {
    const stepKey = foldIn(key, step);
    const vg = valueAndGrad(withAux, { trainable: options.trainable ?? true, hasAux: true });
    let total: [ScalarF32, Record<string, Tensor>, unknown] | undefined;
    for (let i = 0; i < accumulate; i++) {
      const micro = accumulate === 1 ? batch : microBatch(batch, i);
      const ctx: StepContext = { key: accumulate === 1 ? stepKey : foldIn(stepKey, i), step, training: true };
      const [[l, m], g] = vg(params, micro, ctx) as unknown as [[ScalarF32, Record<string, Tensor>], unknown];
      const found = Object.keys(m).sort();
      const f32 = Object.fromEntries(found.map((n) => [n, m[n]!.dtype === "f32" ? m[n]! : m[n]!.cast("f32")]));
      total = total
        ? [total[0].add(l), Object.fromEntries(found.map((n) => [n, (total![1][n] as Wide).add(f32[n] as Wide)])), addTrees(total[2], g)]
        : [l, f32, g];
    }
    const [lossSum, metricSums, gradSum] = total!;
    const mean = 1 / accumulate;
    const names = Object.keys(metricSums).sort();
    checkNames(metrics, names);
    const avg = Object.fromEntries(names.map((n) => [n, accumulate === 1 ? metricSums[n]! : (metricSums[n] as Wide).mul(mean)]));
    const grads = accumulate === 1 ? gradSum : scaleTree(gradSum, mean);
    const next = optimizer.update(grads, opt, params);
    const lossMean = accumulate === 1 ? lossSum : lossSum.mul(mean);
    return { params: next.params, opt: next.state, step: step.add(1), key, stats: pack(lossMean, avg, names) };
  };
  return Object.assign(fn, { metrics });
}

/** The evaluation step: the loss and metrics with the context's `training: false`; params come back unchanged (they are state). */
export function evalFunction(loss: LossFn): StepFunction<[unknown, unknown], { params: unknown; stats: Tensor<[number], "f32"> }> {
  const metrics: string[] = [];
  const fn = (params: unknown, batch: unknown) => {
    const ctx: StepContext = { key: keyFromSeed(0), step: scalar(0, "i32"), training: false };
    const [l, m] = split(loss(params, batch, ctx));
    const names = Object.keys(m).sort();
    checkNames(metrics, names);
    return { params, stats: pack(l, m, names) };
  };
  return Object.assign(fn, { metrics });
}
