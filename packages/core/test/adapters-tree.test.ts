// Adapters on chosen layers of a parameter tree (PEFT's target_modules): which layers a target
// picks, the trainable mask, that nn's models run adapted trees through mergeAdapters, that
// the merged path and the factored applyLinear path agree in value and gradient, and that an
// adapted model trains under its mask with the base frozen.
import { describe, expect, it } from "vitest";
import {
  AdapterError,
  HostTensor,
  adamw,
  adapt,
  adapterMask,
  applyLinear,
  evaluate,
  findTargets,
  mergeAdapters,
  mse,
  nn,
  randomKey,
  run,
  specsOf,
  splitKey,
  trace,
  valueAndGrad,
  type AdaptConfig,
  type Tensor,
} from "@dorafuse/core";
import { expectClose, expectEqual } from "./support/numeric.js";
import { randomArray, randomInts, withSeed } from "./support/random.js";

type Wide = Tensor<number[], "f32">;
const H = (shape: number[], data: ArrayLike<number>, dtype: "f32" | "i32" = "f32"): HostTensor => new HostTensor(shape, Float64Array.from(data), dtype);
const LM = { vocab: 11, dim: 8, heads: 2, hidden: 12, layers: 2, maxSeq: 4 } as const;
const lmParams = (seed: number) => evaluate((k: any) => nn.transformerLM.init(k, LM), [randomKey(seed)] as never) as any;

describe("findTargets picks layers as PEFT's target_modules does", () => {
  const p = lmParams(1);

  it("a name matches a path that is it or ends in .name", () => {
    expect(findTargets(p, ["q", "v"])).toEqual(["blocks.0.attn.q", "blocks.0.attn.v", "blocks.1.attn.q", "blocks.1.attn.v"]);
    expect(findTargets(p, "head")).toEqual(["head"]);
    expect(findTargets(p, ["tokens", "mlp.up"])).toEqual(["blocks.0.mlp.up", "blocks.1.mlp.up", "tokens"]);
  });

  it("a RegExp is tested against every layer's path", () => {
    expect(findTargets(p, /^blocks\.1\.(attn\.o|mlp\.down)$/)).toEqual(["blocks.1.attn.o", "blocks.1.mlp.down"]);
  });

  it("names what is wrong with a target", () => {
    expect(() => findTargets(p, ["q", "attn"])).toThrow(AdapterError);
    expect(() => findTargets(p, ["q", "attn"])).toThrow('target "attn" matches blocks.0.attn, which is not a linear ({ w }) or embedding ({ table }) layer');
    expect(() => findTargets(p, ["q_proj"])).toThrow('target "q_proj" matches no layer; layers: blocks.0.attn.k, blocks.0.attn.o');
    expect(() => findTargets(p, /nothing/)).toThrow("the target /nothing/ matches no layer");
    expect(() => findTargets(p, [])).toThrow("targets is empty");
  });
});

describe("adapt", () => {
  const base = lmParams(2);
  const cfg: AdaptConfig = { kind: "dora", targets: ["q", "v", "tokens"], rank: 2, alpha: 4 };
  const adapted = evaluate((k: any, p: any) => adapt(k, p, cfg).params, [randomKey(3), base] as never) as any;

  it("adds adapters to the targets only, keeping the base tensors", () => {
    const q = adapted.blocks[1].attn.q;
    expect(Object.keys(q).sort()).toEqual(["b", "loraA", "loraB", "m", "w"]);
    expect(q.loraA.shape).toEqual([2, 8]);
    expectEqual(q.w.data, base.blocks[1].attn.q.w.data, "q.w");
    expect(Object.keys(adapted.blocks[0].attn.k).sort()).toEqual(["b", "w"]);
    expect(Object.keys(adapted.tokens).sort()).toEqual(["loraA", "loraB", "m", "table"]);
    expect(adapted.tokens.loraA.shape).toEqual([2, 11]);
    expect(adapted.blocks[0].attn.q.loraA.data).not.toEqual(adapted.blocks[1].attn.q.loraA.data);
  });

  it("gives the mask that trains exactly the adapter leaves", () => {
    const dora = { loraA: true, loraB: true, m: true };
    expect(adapterMask(adapted)).toEqual({ blocks: [{ attn: { q: dora, v: dora } }, { attn: { q: dora, v: dora } }], tokens: dora });
    const returned = evaluate((k: any, p: any) => ({ t: adapt(k, p, { ...cfg, kind: "lora" }).trainable }), [randomKey(3), base] as never) as any;
    expect(returned.t.tokens).toEqual({ loraA: true, loraB: true });
    expect(adapterMask(base)).toBe(false);
  });

  it("refuses host data, and a layer that already has an adapter", () => {
    expect(() => adapt(randomKey(0) as never, base, cfg)).toThrow("call adapt inside a trace");
    expect(() => evaluate((k: any, p: any) => adapt(k, p, cfg).params, [randomKey(3), adapted] as never)).toThrow("adapt: blocks.0.attn.q already has a dora adapter");
  });

  it("a fresh adapted model computes the base model's logits exactly (nn.transformerLM through mergeAdapters)", () =>
    withSeed((rng) => {
      const ids = H([2, 4], randomInts(rng, 8, 0, 10), "i32");
      const logits = (p: any, ids: any) => nn.transformerLM.apply(mergeAdapters(p, cfg), ids, { heads: 2 });
      const a = evaluate(logits, [adapted, ids] as never) as unknown as HostTensor;
      const b = evaluate(logits, [base, ids] as never) as unknown as HostTensor;
      expectEqual(a.data, b.data, "logits");
    }));

  it("masked gradients reach the adapters only", () =>
    withSeed((rng) => {
      const ids = H([1, 4], randomInts(rng, 4, 0, 10), "i32");
      const tg = H([1, 4, 11], randomArray(rng, 44));
      const loss = (p: any, ids: any, tg: any) => mse(nn.transformerLM.apply(mergeAdapters(p, cfg), ids, { heads: 2 }) as never, tg);
      const g = evaluate((p: any, ids: any, tg: any) => valueAndGrad(loss, { trainable: adapterMask(adapted) as never })(p, ids, tg)[1], [adapted, ids, tg] as never) as any;
      expect(g.blocks[0].attn.q.w).toBeNull();
      expect(g.blocks[0].attn.k).toEqual({ b: null, w: null });
      expect(g.tokens.table).toBeNull();
      expect(g.head.w).toBeNull();
      expect(g.blocks[1].attn.v.loraA.shape).toEqual([2, 8]);
      // B is zero, so only B (and m, through g's dependence on m) gets a gradient at first
      expect(Array.from(g.blocks[1].attn.v.loraB.data as Float64Array).some((v) => v !== 0)).toBe(true);
      expect(g.tokens.loraB.shape).toEqual([8, 2]);
    }));
});

describe("applyLinear and mergeAdapters agree", () => {
  for (const kind of ["lora", "dora"] as const) {
    for (const detachNorm of kind === "dora" ? [true, false] : [true]) {
      it(`${kind}${kind === "dora" ? (detachNorm ? ", detached" : ", differentiated") : ""}: value and gradient, factored vs merged`, () =>
        withSeed((rng) => {
          const cfg: AdaptConfig = { kind, targets: ["l1", "l2"], rank: 3, alpha: 5, detachNorm };
          const init = (k: any) => {
            const [k1, k2, ka] = splitKey(k, 3);
            const p = { l1: nn.linear.init(k1, { inDim: 6, outDim: 7 }), l2: nn.linear.init(k2, { inDim: 7, outDim: 2, bias: false }), skip: nn.linear.init(k2, { inDim: 6, outDim: 2 }) };
            const a = adapt(ka, p, cfg).params as any;
            // a trained adapter: B no longer zero
            const B = (l: any) => ({ ...l, loraB: (l.w as Wide).slice([null, [0, 3]]).mul(0.7) });
            return { ...a, l1: B(a.l1), l2: B(a.l2) };
          };
          const p = evaluate(init, [randomKey(rng.int(0, 1e6))] as never) as any;
          const factored = (p: any, x: any) => applyLinear(p.l2, (applyLinear(p.l1, x, cfg) as Wide).tanh(), cfg) as Wide;
          const merged = (p: any, x: any) => {
            const q = mergeAdapters(p, cfg) as any;
            return nn.linear.apply(q.l2, (nn.linear.apply(q.l1, x) as Wide).tanh() as never) as Wide;
          };
          const both = (f: typeof factored) => (p: any, x: any) => valueAndGrad((p: any, x: any) => f(p, x).square().sum(), { trainable: adapterMask(p) as never })(p, x);
          const x = H([4, 6], randomArray(rng, 24));
          const [va, ga] = evaluate(both(factored), [p, x] as never) as any;
          const [vb, gb] = evaluate(both(merged), [p, x] as never) as any;
          expectClose([va.item()], [vb.item()], 1e-12, "loss");
          for (const l of ["l1", "l2"]) for (const k of kind === "dora" ? ["loraA", "loraB", "m"] : ["loraA", "loraB"]) expectClose(ga[l][k].data, gb[l][k].data, 1e-11, `${l}.${k}`);
          expect(ga.skip).toEqual({ b: null, w: null });
        }));
    }
  }
});

describe("an adapted model trains under its mask", () => {
  it("DoRA on both layers of an MLP with AdamW: the loss falls, the base stays bit for bit, frozen leaves hold no state", () =>
    withSeed((rng) => {
      const cfg: AdaptConfig = { kind: "dora", targets: ["up", "down"], rank: 2, alpha: 4 };
      const p0 = evaluate((k: any) => {
        const [kb, ka] = splitKey(k, 2);
        return adapt(ka, nn.mlp.init(kb, { dim: 5, hidden: 8 }), cfg).params;
      }, [randomKey(rng.int(0, 1e6))] as never) as any;
      const mask = adapterMask(p0);
      const opt = adamw({ lr: 0.05, mask, weightDecay: 0.01 });
      const s0 = evaluate((p: any) => opt.init(p), [p0] as never) as any;
      expect(s0.mu.up.w).toBeNull();
      expect(s0.mu.up.b).toBeNull();
      expect(s0.nu.down.m.shape).toEqual([5]);
      const x = H([1, 6, 5], randomArray(rng, 30));
      const y = H([1, 6, 5], randomArray(rng, 30));
      const lossOf = (p: any, x: any, y: any) => mse(nn.mlp.apply(mergeAdapters(p, cfg), x) as never, y);
      const step = trace((p: any, s: any, x: any, y: any) => {
        const [loss, g] = valueAndGrad(lossOf, { trainable: mask as never })(p, x, y);
        return { loss, ...opt.update(g, s, p) };
      }, specsOf([p0, s0, x, y]) as never);
      let [p, s] = [p0, s0];
      const losses: number[] = [];
      for (let i = 0; i < 25; i++) {
        const out = run(step, [p, s, x, y] as never) as any;
        losses.push(out.loss.item());
        [p, s] = [out.params, out.state];
      }
      expect(losses[24]!).toBeLessThan(0.8 * losses[0]!);
      expect(s.count.item()).toBe(25);
      for (const l of ["up", "down"]) {
        expectEqual(p[l].w.data, p0[l].w.data, `${l}.w`);
        expectEqual(p[l].b.data, p0[l].b.data, `${l}.b`);
        expect(p[l].loraB.data).not.toEqual(p0[l].loraB.data);
      }
    }));
});
