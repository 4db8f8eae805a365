// Every composite op of @dorafuse/core (activations, norms, losses, attention, embedding,
// random sampling), traced, compiled with fusion and without, against the interpreter — the
// forward value and, for the differentiable ones, the gradient of ⟨w, op(x)⟩ for a random w.
import { describe, it } from "vitest";
import {
  attention, bernoulli, crossEntropy, dropout, embedding, gelu, layerNorm, logSoftmax, logSumExp, mse, multiHeadAttention,
  normal, relu, rmsNorm, sigmoid, silu, softmax, spec, trace, uniform, valueAndGrad, type Graph, type Tensor, type TensorSpec,
} from "@dorafuse/core";
import { withSeed, type Rng } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectBothSchedules, randomInputs } from "./support/run.js";

const gpu = useDevice();
type F = Tensor<number[], "f32">;
const T = (x: unknown) => x as F;

interface Case {
  name: string;
  fn: (...xs: Tensor[]) => Tensor;
  specs: TensorSpec[];
  /** Which inputs are differentiated (none: forward only). */
  wrt?: number[];
  ranges?: Record<string, [number, number]>;
  /** Replaces the random values of some inputs (labels, keys). */
  values?: (rng: Rng, xs: Float64Array[]) => void;
}

const key = (rng: Rng, xs: Float64Array[], i: number) => (xs[i] = Float64Array.from([rng.int(0, 2 ** 31), rng.int(0, 2 ** 31)]));

const CASES: Case[] = [
  { name: "sigmoid", fn: (x) => sigmoid(T(x)), specs: [spec([3, 17])], wrt: [0] },
  { name: "silu", fn: (x) => silu(T(x)), specs: [spec([17])], wrt: [0] },
  { name: "relu", fn: (x) => relu(T(x)), specs: [spec([3, 17])], wrt: [0] },
  { name: "gelu", fn: (x) => gelu(T(x)), specs: [spec([1, 129])], wrt: [0] },
  { name: "softmax", fn: (x) => softmax(T(x)), specs: [spec([3, 17])], wrt: [0] },
  { name: "softmax over a leading axis", fn: (x) => softmax(T(x), 0), specs: [spec([17, 3])], wrt: [0] },
  { name: "logSoftmax", fn: (x) => logSoftmax(T(x)), specs: [spec([5, 129])], wrt: [0] },
  { name: "logSumExp", fn: (x) => logSumExp(T(x)), specs: [spec([3, 1, 17])], wrt: [0] },
  { name: "layerNorm", fn: (x, g, b) => layerNorm(T(x), T(g) as never, T(b) as never), specs: [spec([2, 3, 17]), spec([17]), spec([17])], wrt: [0, 1, 2] },
  { name: "rmsNorm", fn: (x, g) => rmsNorm(T(x), T(g) as never), specs: [spec([3, 129]), spec([129])], wrt: [0, 1] },
  {
    name: "crossEntropy with ignored labels",
    fn: (x, y) => crossEntropy(T(x), y as never),
    specs: [spec([3, 5, 11]), spec([3, 5], "i32")],
    wrt: [0],
    values: (rng, xs) => (xs[1] = xs[1]!.map(() => (rng.next() < 0.2 ? -100 : rng.int(0, 10)))),
  },
  { name: "mse", fn: (x, y) => mse(T(x), T(y)), specs: [spec([17, 3]), spec([17, 3])], wrt: [0, 1] },
  { name: "causal attention", fn: (q, k, v) => attention(T(q), T(k), T(v), { causal: true }), specs: [spec([2, 5, 8]), spec([2, 5, 8]), spec([2, 5, 3])], wrt: [0, 1, 2] },
  { name: "multi-head attention", fn: (q, k, v) => multiHeadAttention(T(q) as never, T(k) as never, T(v) as never, 2), specs: [spec([2, 3, 8]), spec([2, 3, 8]), spec([2, 3, 8])], wrt: [0, 1, 2] },
  {
    name: "embedding",
    fn: (t, ids) => embedding(T(t) as never, ids as never),
    specs: [spec([7, 5]), spec([2, 9], "i32")],
    wrt: [0],
    values: (rng, xs) => (xs[1] = xs[1]!.map(() => rng.int(0, 6))),
  },
  { name: "dropout", fn: (k, x) => dropout(k as never, T(x), 0.3), specs: [spec([2], "u32"), spec([17, 5])], wrt: [1], values: (rng, xs) => key(rng, xs, 0) },
  { name: "uniform", fn: (k) => uniform(k as never, [17, 3], { low: -2, high: 3 }), specs: [spec([2], "u32")], values: (rng, xs) => key(rng, xs, 0) },
  { name: "normal", fn: (k) => normal(k as never, [129], { mean: 1, std: 2 }), specs: [spec([2], "u32")], values: (rng, xs) => key(rng, xs, 0) },
  { name: "bernoulli", fn: (k) => bernoulli(k as never, 0.4, [33]), specs: [spec([2], "u32")], values: (rng, xs) => key(rng, xs, 0) },
];

/** ⟨w, fn(xs)⟩ and its gradient with respect to `wrt`, as one graph (w is the last input). */
function gradientGraph(c: Case): Graph {
  const out = trace((...xs: Tensor[]) => c.fn(...xs), c.specs as never).graph.outputs[0]!;
  const g = (...args: Tensor[]) => {
    const w = T(args[args.length - 1]);
    return valueAndGrad((...xs: Tensor[]) => T(c.fn(...xs)).mul(w).sum(), { argnums: c.wrt! })(...args.slice(0, -1));
  };
  return trace(g, [...c.specs, spec([...out.shape])] as never).graph;
}

describe("composite ops", () => {
  for (const c of CASES) {
    it(`${c.name}: forward${c.wrt ? " and gradient" : ""} match the interpreter, fused and unfused`, () =>
      withSeed(async (rng) => {
        const fwd = trace((...xs: Tensor[]) => c.fn(...xs), c.specs as never).graph;
        const xs = randomInputs(rng, fwd, c.ranges);
        c.values?.(rng, xs);
        await expectBothSchedules(gpu.device, fwd, xs, { target: gpu.target, tol: 5e-5 });
        if (!c.wrt) return;
        const g = gradientGraph(c);
        const gxs = randomInputs(rng, g, c.ranges);
        xs.forEach((x, i) => (gxs[i] = x));
        await expectBothSchedules(gpu.device, g, gxs, { target: gpu.target, tol: 1e-4 });
      }));
  }
});
