// grad / valueAndGrad / vjp over pytrees with a chosen trainable sub-tree, higher-order
// gradients, stopGradient, customVjp and checkpoint — all against finite differences of the
// float64 interpreter, or against the plain graph they must agree with.
import { describe, expect, it } from "vitest";
import {
  HostTensor,
  TraceError,
  checkpoint,
  customVjp,
  evaluate,
  grad,
  interpret,
  specsOf,
  stopGradient,
  trace,
  valueAndGrad,
  vjp,
  type Tensor,
} from "@dorafuse/core";
import { dot, expectClose, finiteDiff } from "./support/numeric.js";
import { withSeed, type Rng } from "./support/random.js";
import { randomHost, randomIntHost } from "./support/frontend-check.js";

type W = Tensor<number[], "f32">;
type Params = { w: Tensor<[3, 4], "f32">; b: Tensor<[3], "f32">; frozen: { scale: Tensor<[3], "f32"> }; ids: Tensor<[2], "i32"> };

/** A loss over a parameter tree with a frozen part and an integer leaf. */
const loss = (p: Params, x: Tensor<[5, 4], "f32">) => {
  const h = x.matmul(p.w.mT()).add(p.b).tanh().mul(p.frozen.scale);
  return h.square().mean().add(p.ids.cast("f32").sum().mul(0.01));
};

function randomParams(rng: Rng) {
  return {
    w: randomHost(rng, [3, 4]) as HostTensor<[3, 4], "f32">,
    b: randomHost(rng, [3]) as HostTensor<[3], "f32">,
    frozen: { scale: randomHost(rng, [3]) as HostTensor<[3], "f32"> },
    ids: randomIntHost(rng, [2], 0, 9) as HostTensor<[2], "i32">,
  };
}

/** Finite differences of `loss` with respect to one leaf, the others fixed. */
function fdLeaf(p: ReturnType<typeof randomParams>, x: HostTensor<[5, 4], "f32">, leaf: "w" | "b" | "scale" | "x"): Float64Array {
  const t = trace(loss, specsOf([p, x]));
  // flatten order: b, frozen.scale, ids, w, then x
  const order = ["b", "scale", "ids", "w", "x"];
  const data = [p.b, p.frozen.scale, p.ids, p.w, x].map((h) => h.data);
  return finiteDiff((xs) => interpret(t.graph, xs)[0]![0]!, data, order.indexOf(leaf));
}

describe("grad over pytrees", () => {
  it("mirrors the parameter tree, with null for integer leaves, and matches finite differences", () =>
    withSeed((rng) => {
      const p = randomParams(rng);
      const x = randomHost(rng, [5, 4]) as HostTensor<[5, 4], "f32">;
      const [value, g] = evaluate((pp, xx) => valueAndGrad(loss)(pp, xx), [p, x]);
      expect(g.ids).toBeNull();
      expectClose(value.data, evaluate(loss, [p, x]).data, 1e-15, "value");
      expectClose(g.w.data, fdLeaf(p, x, "w"), 1e-7, "w");
      expectClose(g.b.data, fdLeaf(p, x, "b"), 1e-7, "b");
      expectClose(g.frozen.scale.data, fdLeaf(p, x, "scale"), 1e-7, "scale");
    }));

  it("a trainable mask differentiates only the chosen sub-tree; the rest is null", () =>
    withSeed((rng) => {
      const p = randomParams(rng);
      const x = randomHost(rng, [5, 4]) as HostTensor<[5, 4], "f32">;
      const all = evaluate((pp, xx) => grad(loss)(pp, xx), [p, x]);
      const t = trace((pp, xx) => grad(loss, { trainable: { w: true, frozen: false } })(pp, xx), specsOf([p, x]));
      expect(t.outputs.map((o) => o.path)).toEqual(["out.w"]);
      const masked = evaluate((pp, xx) => grad(loss, { trainable: { w: true, frozen: false } })(pp, xx), [p, x]);
      expect(masked.b).toBeNull();
      expect(masked.frozen.scale).toBeNull();
      expect(masked.ids).toBeNull();
      expectClose(masked.w.data, all.w.data, 0, "w");
    }));

  it("argnums picks the arguments: one tree, or a tuple for a list", () =>
    withSeed((rng) => {
      const p = randomParams(rng);
      const x = randomHost(rng, [5, 4]) as HostTensor<[5, 4], "f32">;
      const gx = evaluate((pp, xx) => grad(loss, { argnums: 1 })(pp, xx), [p, x]);
      expectClose(gx.data, fdLeaf(p, x, "x"), 1e-7, "x");
      const [gp, gx2] = evaluate((pp, xx) => grad(loss, { argnums: [0, 1] })(pp, xx), [p, x]);
      expectClose(gx2.data, gx.data, 0, "x again");
      expectClose(gp.b.data, fdLeaf(p, x, "b"), 1e-7, "b");
      expect(() => evaluate((pp, xx) => grad(loss, { argnums: 2 })(pp, xx), [p, x])).toThrow(/argnums 2 is out of range/);
    }));

  it("hasAux returns the auxiliary value untouched", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [4]);
      const [[l, aux], g] = evaluate((v: W) => valueAndGrad((u: W) => [u.square().sum(), u.exp()] as const, { hasAux: true })(v), [x as never]) as unknown as [
        [HostTensor, HostTensor],
        HostTensor,
      ];
      expectClose(l.data, [dot(x.data, x.data)], 1e-15);
      expectClose(aux.data, x.data.map(Math.exp), 1e-15);
      expectClose(g.data, x.data.map((v) => 2 * v), 1e-15);
    }));

  it("a non-scalar loss is a TraceError saying what grad needs", () => {
    expect(() => evaluate((v: W) => grad((u: W) => u.exp())(v), [new HostTensor([3], new Float64Array(3), "f32") as never])).toThrow(
      /grad: the function must return a float scalar \(shape \[\]\); found f32\[3\]/,
    );
  });
});

describe("higher-order gradients", () => {
  it("grad(grad(f)) gives Hessian-vector products that match finite differences of the gradient", () =>
    withSeed((rng) => {
      const f = (x: W) => x.sin().mul(x.square()).sum().add(x.sum().tanh());
      const x = randomHost(rng, [5]);
      const v = randomHost(rng, [5]);
      const hv = evaluate((xx: W, vv: W) => grad((y: W) => grad(f)(y).mul(vv).sum())(xx), [x, v] as never) as unknown as HostTensor;
      const gradF = trace((xx: W) => grad(f)(xx), [specsOf(x)] as never);
      const gv = (xs: Float64Array[]) => dot(interpret(gradF.graph, xs)[0]!, v.data);
      expectClose(hv.data, finiteDiff(gv, [x.data], 0), 1e-6, "H·v");
    }));

  it("second derivatives flow through matmul, softmax-style reductions and broadcasting", () =>
    withSeed((rng) => {
      const f = (w: W, x: W) => x.matmul(w).exp().sum(-1, true).log().mul(x.sum(-1, true)).sum();
      const w = randomHost(rng, [3, 2]);
      const x = randomHost(rng, [4, 3]);
      const gg = evaluate((ww: W, xx: W) => grad((u: W) => grad(f)(u, xx).square().sum())(ww), [w, x] as never) as unknown as HostTensor;
      const inner = trace((ww: W, xx: W) => grad(f)(ww, xx).square().sum(), specsOf([w, x]) as never);
      expectClose(gg.data, finiteDiff((xs) => interpret(inner.graph, xs)[0]![0]!, [w.data, x.data], 0), 1e-6);
    }));
});

describe("vjp", () => {
  it("returns the output and a pullback whose cotangents match finite differences", () =>
    withSeed((rng) => {
      const f = (a: W, b: W) => ({ s: a.mul(b).tanh(), t: a.sum(0) });
      const a = randomHost(rng, [2, 3]);
      const b = randomHost(rng, [3]);
      const cs = randomHost(rng, [2, 3]);
      const ct = randomHost(rng, [3]);
      const out = evaluate((aa: W, bb: W, c1: W, c2: W) => {
        const [y, back] = vjp(f, aa, bb);
        return { y, g: back({ s: c1, t: c2 }) };
      }, [a, b, cs, ct] as never) as unknown as { y: { s: HostTensor }; g: [HostTensor, HostTensor] };
      expectClose(out.y.s.data, a.data.map((v, i) => Math.tanh(v * b.data[i % 3]!)), 1e-15);
      const fwd = trace((aa: W, bb: W) => f(aa, bb), specsOf([a, b]) as never);
      const pair = (xs: Float64Array[]) => {
        const [s, t] = interpret(fwd.graph, xs);
        return dot(s!, cs.data) + dot(t!, ct.data);
      };
      expectClose(out.g[0].data, finiteDiff(pair, [a.data, b.data], 0), 1e-7, "da");
      expectClose(out.g[1].data, finiteDiff(pair, [a.data, b.data], 1), 1e-7, "db");
    }));
});

describe("stopGradient, customVjp, checkpoint", () => {
  it("stopGradient blocks the gradient but keeps the value", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [4]);
      const [v, g] = evaluate((xx: W) => valueAndGrad((u: W) => u.mul(stopGradient(u)).sum())(xx), [x as never]) as unknown as [HostTensor, HostTensor];
      expectClose(v.data, [dot(x.data, x.data)], 1e-15);
      expectClose(g.data, x.data, 1e-15);
    }));

  // softplus(x) = log(1 + e^x), with its exact derivative sigmoid(x) written by hand
  const softplus = customVjp(
    (x: W) => x.exp().add(1).log(),
    ([x], ct) => [ct.mul(x.neg().exp().add(1).recip())],
  );

  it("customVjp gives the same values and gradients as the plain graph", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [6], { lo: -3, hi: 3 });
      const w = randomHost(rng, [6]);
      const loss = (sp: (u: W) => W) => (u: W, ww: W) => sp(u.mul(ww)).mul(ww).sum();
      const plain = evaluate((xx: W, ww: W) => valueAndGrad(loss((u) => u.exp().add(1).log()), { argnums: [0, 1] })(xx, ww), [x, w] as never) as unknown as [HostTensor, HostTensor[]];
      const custom = evaluate((xx: W, ww: W) => valueAndGrad(loss(softplus), { argnums: [0, 1] })(xx, ww), [x, w] as never) as unknown as [HostTensor, HostTensor[]];
      expectClose(custom[0].data, plain[0].data, 1e-15, "value");
      expectClose(custom[1][0]!.data, plain[1][0]!.data, 1e-12, "dx");
      expectClose(custom[1][1]!.data, plain[1][1]!.data, 1e-12, "dw");
      const t = trace((xx: W) => softplus(xx), [specsOf(x)] as never);
      expect(t.graph.nodes.some((n) => n.op === "call" && n.attrs.mode === "customVjp")).toBe(true);
    }));

  it("customVjp's backward is the one used (a deliberately scaled rule shows through)", () =>
    withSeed((rng) => {
      const doubled = customVjp(
        (x: W) => x.square(),
        ([x], ct) => [ct.mul(x).mul(4)],
      );
      const x = randomHost(rng, [3]);
      const g = evaluate((xx: W) => grad((u: W) => doubled(u).sum())(xx), [x as never]) as unknown as HostTensor;
      expectClose(g.data, x.data.map((v) => 4 * v), 1e-15);
    }));

  it("customVjp refuses to close over tensors of the enclosing trace", () => {
    expect(() =>
      evaluate((a: W, b: W) => customVjp((u: W) => u.mul(b), ([u], ct) => [ct])(a), [new HostTensor([2], new Float64Array(2), "f32"), new HostTensor([2], new Float64Array(2), "f32")] as never),
    ).toThrow(TraceError);
  });

  it("checkpoint gives the same gradients as the plain graph and emits call nodes", () =>
    withSeed((rng) => {
      const block = (h: W, w: W) => h.matmul(w).tanh().add(h);
      const w = randomHost(rng, [4, 4]);
      const w2 = randomHost(rng, [4, 4]);
      const x = randomHost(rng, [3, 4]);
      const net = (blk: (h: W, w: W) => W) => (ws: W[], xx: W) => blk(blk(xx, ws[0]!), ws[1]!).square().mean();
      const grads = (blk: (h: W, w: W) => W) =>
        evaluate((ws: W[], xx: W) => grad(net(blk), { argnums: [0, 1] })(ws, xx), [[w, w2], x] as never) as unknown as [HostTensor[], HostTensor];
      const plain = grads(block);
      const ckpt = grads(checkpoint(block));
      expectClose(ckpt[0][0]!.data, plain[0][0]!.data, 1e-12, "w1");
      expectClose(ckpt[0][1]!.data, plain[0][1]!.data, 1e-12, "w2");
      expectClose(ckpt[1].data, plain[1].data, 1e-12, "x");
      const fwd = trace((ws: W[], xx: W) => net(checkpoint(block))(ws, xx), specsOf([[w, w2], x]) as never);
      expect(fwd.graph.nodes.filter((n) => n.op === "call" && n.attrs.mode === "checkpoint")).toHaveLength(2);
    }));

  it("checkpoint of a function closing over an outer tensor still sends it a gradient", () =>
    withSeed((rng) => {
      const x = randomHost(rng, [4]);
      const c = randomHost(rng, [4]);
      const f = (xx: W, cc: W) => checkpoint((u: W) => u.mul(cc).sin())(xx).sum();
      const g = evaluate((xx: W, cc: W) => grad(f, { argnums: 1 })(xx, cc), [x, c] as never) as unknown as HostTensor;
      expectClose(g.data, x.data.map((v, i) => v * Math.cos(v * c.data[i]!)), 1e-12);
    }));
});
