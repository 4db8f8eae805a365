// Frontend test helpers: random host tensors, and gradients of typed functions (through
// valueAndGrad, traced and interpreted) against central finite differences of the same
// function's forward graph in float64. Builds on the shared numeric and random helpers.
import { HostTensor, interpret, run, specsOf, trace, valueAndGrad, type Tensor } from "@dorafuse/core";
import { dot, expectClose, finiteDiff, size } from "./numeric.js";
import { randomArray, randomInts, type Rng } from "./random.js";

/** A random f32 host tensor, values uniform in [lo, hi) (default [-1, 1)). */
export function randomHost(rng: Rng, shape: readonly number[], opts: { lo?: number; hi?: number; minAbs?: number } = {}): HostTensor<number[], "f32"> {
  return new HostTensor([...shape], randomArray(rng, size(shape), opts), "f32");
}

/** A random i32 host tensor with values in [lo, hi]. */
export function randomIntHost(rng: Rng, shape: readonly number[], lo: number, hi: number): HostTensor<number[], "i32"> {
  return new HostTensor([...shape], randomInts(rng, size(shape), lo, hi), "i32");
}

// Any function of tensors; the helpers only trace it, so its exact types do not matter here.
type AnyFn = (...xs: never[]) => unknown;

/** `f` on host inputs, in float64: its single output's data. */
export function evalData(f: AnyFn, inputs: readonly HostTensor[]): Float64Array {
  const t = trace((...xs: Tensor[]) => f(...(xs as never[])), specsOf(inputs) as never);
  return (run(t, inputs as never) as unknown as HostTensor).data;
}

/**
 * Checks the gradient of `⟨ct, f(xs)⟩` (ct random, fixed) with respect to inputs `wrt`
 * (default all f32 inputs) against central finite differences. Returns the gradients.
 */
export function checkGradients(f: AnyFn, inputs: readonly HostTensor[], rng: Rng, opts: { tol?: number; wrt?: readonly number[] } = {}): Float64Array[] {
  const wrt = opts.wrt ?? inputs.flatMap((x, i) => (x.dtype === "f32" ? [i] : []));
  const fwd = trace((...xs: Tensor[]) => f(...(xs as never[])), specsOf(inputs) as never);
  const outShape = fwd.outputs[0]!.shape;
  const ct = new HostTensor([...outShape], randomArray(rng, size(outShape)), "f32");
  const pairing = (...xs: Tensor[]): Tensor => {
    const y = f(...(xs.slice(0, -1) as never[])) as Tensor<number[], "f32">;
    return y.mul(xs[xs.length - 1] as Tensor<number[], "f32">).sum() as Tensor;
  };
  const g = trace(
    (...xs: Tensor[]) => valueAndGrad(pairing, { argnums: wrt as number[] })(...xs)[1],
    specsOf([...inputs, ct]) as never,
  );
  const grads = (run(g, [...inputs, ct] as never) as unknown as HostTensor[]).map((h) => h.data);
  const L = (xs: Float64Array[]): number => dot(interpret(fwd.graph, xs)[0]!, ct.data);
  wrt.forEach((k, i) => expectClose(grads[i]!, finiteDiff(L, inputs.map((x) => x.data), k), opts.tol ?? 1e-6, `gradient wrt input ${k}`));
  return grads;
}
