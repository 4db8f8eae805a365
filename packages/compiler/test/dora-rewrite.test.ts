// Recognizing DoRA: the rewrite turns every form of the layer — doraLinear.apply's factored
// norm, mergeDora's merged weight, hand-written explicit or factored norms, with or without
// bias, ε and dropout — into one doraLinear node before differentiation; the rewritten graph
// computes what the original does (the interpreter is the judge), its gradients match finite
// differences, and expressions that only look like DoRA are left alone.
import { describe, expect, it } from "vitest";
import { DORA_NORM_EPS, doraDropMask, interpret, mergeDora, nn, spec, stopGradient, trace, valueAndGrad, type Graph, type Tensor } from "@dorafuse/core";
import { doraForward, type DoraInputs } from "../../core/test/adapters-peft-reference.js";
import { doraPass, withDoraConfig } from "@dorafuse/compiler";
import { withSeed } from "../../core/test/support/random.js";
import { expectClose, finiteDiff } from "../../core/test/support/numeric.js";
import { composite, forwardGraph, gradGraph, inputsOf, optsOf, type DoraCase } from "./support/dora.js";

type F = Tensor<number[], "f32">;
const ops = (g: Graph) => g.nodes.map((n) => n.op + (n.op === "doraLinear" && n.attrs.save ? "*" : ""));
const count = (g: Graph, op: string) => ops(g).filter((o) => o === op).length;

/** The graph of f's value and gradients (for every argument but the last, gy), traced with and without the rewrite. */
function both(f: (p: Record<string, F>, x: F) => F, shapes: Record<string, number[]>, x: number[], out: number[]): [Graph, Graph] {
  const specs = [Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, spec(s)])), spec(x), spec(out)];
  const g = () => trace((p: never, xx: never, gy: never) => valueAndGrad((q: never, xv: never) => f(q, xv).mul(gy).sum(), { argnums: [0, 1] })(p, xx), specs as never).graph;
  return [g(), withDoraConfig({ enabled: false }, g)];
}

function expectSameValues(rewritten: Graph, original: Graph, inputs: Float64Array[], tol = 1e-11): void {
  const a = interpret(rewritten, inputs);
  const b = interpret(original, inputs);
  b.forEach((want, k) => expectClose(a[k]!, want, tol, `output ${k}`));
}

const SHAPES = { w: [6, 5], b: [6], A: [3, 5], B: [6, 3], m: [6] };
const S = 1.75;

/** Inputs for `both`'s graphs: W away from zero, a small adapter, m near ‖W‖, x, gy. */
function inputs(rng: { uniform(lo: number, hi: number): number }, g: Graph): Float64Array[] {
  return g.inputs.map((n) => {
    const name = String(n.attrs.name).split(".").pop()!;
    const size = n.shape.reduce((a, b) => a * b, 1);
    const draw = () => (name === "m" ? rng.uniform(1, 2) : name === "A" || name === "B" ? rng.uniform(-0.4, 0.4) : (rng.uniform(0.2, 1) * (rng.uniform(0, 1) < 0.5 ? -1 : 1)));
    return Float64Array.from({ length: size }, draw);
  });
}

const HAND_WRITTEN: [string, (p: Record<string, F>, x: F) => F, { detach: boolean; eps: number; bias: boolean }][] = [
  [
    "explicit V = W + s·B·A, √(ΣV² + ε), detached, bias",
    (p, x) => {
      const v = p.w!.add(p.B!.matmul(p.A!).mul(S));
      const g = p.m!.div(stopGradient(v.square().sum(1).add(1e-10).sqrt()));
      return x.matmul(p.w!.mT()).add(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(S)).mul(g).add(p.b!);
    },
    { detach: true, eps: 1e-10, bias: true },
  ],
  [
    "explicit norm without ε or bias, differentiated, g applied first",
    (p, x) => {
      const v = p.B!.matmul(p.A!).mul(S).add(p.w!);
      const g = p.m!.div(v.mul(v).sum(1).sqrt());
      return g.mul(x.matmul(p.w!.mT())).add(g.mul(x.matmul(p.A!.mT()).matmul(p.B!.mT())).mul(S));
    },
    { detach: false, eps: 0, bias: false },
  ],
  [
    "a merged weight g[:, None] ⊙ (W + s·B·A)",
    (p, x) => {
      const v = p.w!.add(p.B!.matmul(p.A!).mul(S));
      const g = p.m!.div(stopGradient(v.square().sum(1).add(DORA_NORM_EPS).sqrt()));
      return x.matmul(v.mul(g.expandDims(1)).mT()).add(p.b!);
    },
    { detach: true, eps: DORA_NORM_EPS, bias: true },
  ],
  [
    "the factored norm written out, with the stable compose",
    (p, x) => {
      const n2 = p.w!.square().sum(1).add(p.w!.matmul(p.A!.mT()).mul(p.B!).sum(1).mul(2 * S)).add(p.B!.matmul(p.A!.matmul(p.A!.mT())).mul(p.B!).sum(1).mul(S * S));
      const g = p.m!.div(n2.maximum(0).add(1e-9).sqrt());
      const base = x.matmul(p.w!.mT());
      return base.add(p.b!).add(g.sub(1).mul(base).add(g.mul(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(S))));
    },
    { detach: false, eps: 1e-9, bias: true },
  ],
];

describe("the DoRA rewrite", () => {
  for (const detach of [true, false]) {
    for (const dropout of [0, 0.3]) {
      it(`turns doraLinear.apply into the fused forward and backward (norm ${detach ? "detached" : "differentiated"}, dropout ${dropout})`, () =>
        withSeed((rng) => {
          const c: DoraCase = { lead: [2, 3], inDim: 5, out: 4, rank: 3, detach, dropout };
          const traced = gradGraph(c);
          // the gradient was taken of doraLinear: the packed forward state and the two backward ops
          expect(ops(traced).filter((o) => o.startsWith("dora")).sort()).toEqual(["doraGradCols", "doraGradRows", "doraLinear*"]);
          // y, traced outside the gradient, is recognized by the compiler pass and read from the same state
          const g = doraPass(traced);
          expect(ops(g).filter((o) => o.startsWith("dora")).sort()).toEqual(["doraGradCols", "doraGradRows", "doraLinear*"]);
          // nothing of W's size is computed: no B·A, no W + s·B·A
          expect(g.nodes.filter((n) => n.op !== "input" && n.shape.join() === "4,5")).toEqual([]);
          const x = inputsOf(rng, traced, c);
          expectSameValues(g, composite(c, true), x);
          expectSameValues(traced, composite(c, true), x);
        }));
    }
  }

  it("recognizes mergeDora followed by nn.linear (the mergeAdapters path)", () =>
    withSeed((rng) => {
      const opts = { rank: 3, alpha: 5 };
      const f = (p: Record<string, F>, x: F) => nn.linear.apply(mergeDora({ w: p.w, b: p.b, loraA: p.A, loraB: p.B, m: p.m } as never, opts) as never, x as never) as F;
      const [g, original] = both(f, SHAPES, [2, 3, 5], [2, 3, 6]);
      expect(count(g, "doraLinear*")).toBe(1);
      const dora = g.nodes.find((n) => n.op === "doraLinear")!;
      expect(dora.attrs).toMatchObject({ scale: 5 / 3, eps: DORA_NORM_EPS, clamp: true, detach: true, bias: true, rate: 0 });
      expectSameValues(g, original, inputs(rng, g));
    }));

  for (const [name, f, attrs] of HAND_WRITTEN) {
    it(`recognizes DoRA written by hand: ${name}`, () =>
      withSeed((rng) => {
        const [g, original] = both(f, SHAPES, [4, 5], [4, 6]);
        // the loss value reads the plain layer; its gradient, the packed state (one after the pass)
        expect(ops(g).filter((o) => o.startsWith("dora")).sort()).toEqual(["doraGradCols", "doraGradRows", "doraLinear", "doraLinear*"]);
        expect(ops(doraPass(g)).filter((o) => o.startsWith("dora")).sort()).toEqual(["doraGradCols", "doraGradRows", "doraLinear*"]);
        const dora = g.nodes.find((n) => n.op === "doraLinear")!;
        expect(dora.attrs).toMatchObject({ scale: S, eps: attrs.eps, detach: attrs.detach, bias: attrs.bias });
        expectSameValues(g, original, inputs(rng, g), attrs.eps === 0 ? 1e-10 : 1e-11);
      }));
  }

  const NEAR_MISSES: [string, (p: Record<string, F>, x: F) => F][] = [
    ["the compose scales the adapter by another s than the norm", (p, x) => {
      const g = p.m!.div(p.w!.add(p.B!.matmul(p.A!).mul(S)).square().sum(1).sqrt());
      return x.matmul(p.w!.mT()).add(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(2 * S)).mul(g);
    }],
    ["stopGradient on g, which also freezes m", (p, x) => {
      const v = p.w!.add(p.B!.matmul(p.A!).mul(S));
      const g = stopGradient(p.m!.div(v.square().sum(1).sqrt()));
      return x.matmul(p.w!.mT()).add(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(S)).mul(g);
    }],
    ["LoRA (no magnitude)", (p, x) => x.matmul(p.w!.mT()).add(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(S))],
    ["the magnitude scales only the base", (p, x) => {
      const g = p.m!.div(p.w!.add(p.B!.matmul(p.A!).mul(S)).square().sum(1).sqrt());
      return x.matmul(p.w!.mT()).mul(g).add(x.matmul(p.A!.mT()).matmul(p.B!.mT()).mul(S));
    }],
  ];
  for (const [name, f] of NEAR_MISSES) {
    it(`leaves alone what only looks like DoRA: ${name}`, () =>
      withSeed((rng) => {
        const [g, original] = both(f, SHAPES, [4, 5], [4, 6]);
        expect(ops(g).filter((o) => o.startsWith("dora"))).toEqual([]);
        expectSameValues(g, original, inputs(rng, g), 0);
      }));
  }

  it("as a compiler pass, recognizes and schedules a forward graph never differentiated", () =>
    withSeed((rng) => {
      const c: DoraCase = { lead: [3], inDim: 5, out: 4, rank: 2, dropout: 0.2 };
      const g = withDoraConfig({ enabled: false }, () => forwardGraph(c));
      expect(count(g, "doraLinear")).toBe(0);
      const single = withDoraConfig({ schedule: "single" }, () => doraPass(g));
      const split = withDoraConfig({ schedule: "split" }, () => doraPass(g));
      expect(ops(single).filter((o) => o.startsWith("dora"))).toEqual(["doraLinear"]);
      expect(ops(split).filter((o) => o.startsWith("dora"))).toEqual(["doraStats", "doraLinear"]);
      const x = inputsOf(rng, g, c);
      expectSameValues(single, g, x);
      expectSameValues(split, g, x);
    }));
});

describe("gradients of the fused layer match central finite differences", () => {
  for (const [detach, dropout] of [[true, 0], [true, 0.3], [false, 0], [false, 0.3]] as const) {
    it(`with the norm ${detach ? "detached (n held constant)" : "differentiated"}${dropout ? ", with dropout" : ""}`, () =>
      withSeed((rng) => {
        const c: DoraCase = { lead: [3], inDim: 4, out: 5, rank: 2, detach, dropout };
        const g = gradGraph(c);
        const x = inputsOf(rng, g, c);
        const [, ...grads] = interpret(g, x);
        const at = (name: string) => g.inputs.findIndex((n) => n.attrs.name === name);
        const v = (name: string) => x[at(name)]!;
        const mask = doraDropMask(v("arg3"), 3 * 4, dropout);
        // PEFT's formula in float64 (adapters-peft-reference.ts), independent of the library
        const layer = (A: Float64Array, B: Float64Array, m: Float64Array, xx: Float64Array): DoraInputs => ({
          W: v("arg0.w"), A, B, m, x: xx, bias: v("arg0.b"), out: 5, inDim: 4, rank: 2, n: 3, s: optsOf(c).alpha / 2, eps: DORA_NORM_EPS, ...(mask ? { drop: mask } : {}),
        });
        const start = [v("arg0.loraA"), v("arg0.loraB"), v("arg0.m"), v("arg1")] as const;
        const n0 = detach ? doraForward(layer(...start)).n : undefined;
        const loss = (xs: Float64Array[]) => doraForward(layer(xs[0]!, xs[1]!, xs[2]!, xs[3]!), n0).y.reduce((s, y, i) => s + y * v("arg2")[i]!, 0);
        ["dA", "dB", "dm", "dx"].forEach((name, k) => expectClose(grads[k]!, finiteDiff(loss, [...start], k), 1e-6, name));
      }));
  }
});
