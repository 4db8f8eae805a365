// What the plan does with a DoRA layer, asserted from the plan (never from timing): one
// forward dispatch with the single-kernel schedule (two with the split one), at most two
// backward dispatches, no tensor as large as W besides W itself, the cost model's choice and
// its reason visible in `explain`; and the models users write — nn's transformer through
// mergeAdapters, or through its adapters option with dropout — compile to the fused kernels.
import { describe, expect, it } from "vitest";
import { adamw, adapt, adapterMask, crossEntropy, doraLinear, evaluate, mergeAdapters, nn, randomKey, specsOf, spec, trace, valueAndGrad, vjp, type Tensor } from "@dorafuse/core";
import { doraReport, explainLowered, lowerGraph, printDoraReport, withDoraConfig } from "@dorafuse/compiler";
import { useDevice } from "./support/device.js";
import { forwardGraph, gradGraph, lowerDora, type DoraCase } from "./support/dora.js";

const gpu = useDevice();
const LAYER: DoraCase = { lead: [4], inDim: 33, out: 20, rank: 3 };

describe("DoRA in the plan", () => {
  for (const [detach, dropout] of [[true, 0], [false, 0.3]] as const) {
    it(`one forward dispatch (single kernel) and two backward dispatches, nothing of W's size (norm ${detach ? "detached" : "differentiated"}, dropout ${dropout})`, () => {
      const c = { ...LAYER, detach, dropout };
      const [layer] = doraReport(lowerDora(gradGraph(c), gpu.target, "single"));
      expect(layer!.shape).toEqual([20, 33]);
      expect(layer!.schedule).toBe("single");
      expect(layer!.forward).toHaveLength(1);
      expect(layer!.backward).toHaveLength(2);
      expect(layer!.weightSized).toEqual([]);
      const [fwd] = doraReport(lowerDora(forwardGraph(c), gpu.target, "single"));
      expect([fwd!.forward.length, fwd!.backward.length, fwd!.weightSized]).toEqual([1, 0, []]);
    });
  }

  it("the split schedule: doraStats and the main kernel forward, still two backward", () => {
    const [layer] = doraReport(lowerDora(gradGraph(LAYER), gpu.target, "split"));
    expect([layer!.schedule, layer!.forward.length, layer!.backward.length, layer!.weightSized]).toEqual(["split", 2, 2, []]);
  });

  it("activations of W's shape (a batch of out rows of in) are not taken for weight-sized tensors", () => {
    const [layer] = doraReport(lowerDora(gradGraph({ lead: [20], inDim: 33, out: 20, rank: 3 }), gpu.target));
    expect([layer!.shape, layer!.backward.length, layer!.weightSized]).toEqual([[20, 33], 2, []]);
  });

  it("the size check can fail: the composite traced without the rewrite builds W + s·B·A", () => {
    const g = withDoraConfig({ enabled: false }, () => gradGraph(LAYER));
    const plan = withDoraConfig({ enabled: false }, () => lowerGraph(g, { target: gpu.target, fusion: false }));
    expect(doraReport(plan)).toEqual([]);
    const big = [...plan.memory.homes.keys()].filter((n) => n.op !== "input" && n.shape.join() === "20,33");
    expect(big.length).toBeGreaterThan(0);
  });

  it("the cost model: one kernel for a small batch, two for a large batch and rank; explain says which and why", () => {
    const small = lowerDora(forwardGraph({ lead: [2], inDim: 64, out: 64, rank: 4 }), gpu.target);
    const large = lowerDora(forwardGraph({ lead: [1024], inDim: 64, out: 64, rank: 16 }), gpu.target);
    const [s] = doraReport(small);
    const [l] = doraReport(large);
    expect([s!.schedule, s!.forward.length]).toEqual(["single", 1]);
    expect([l!.schedule, l!.forward.length]).toEqual(["split", 2]);
    expect(s!.why).toMatch(/^single is cheaper: single kernel ≈ [\d.]+M, split ≈ [\d.]+M FLOP-equivalents \(batch 2, in 64, out 64, rank 4\)$/);
    expect(l!.why).toMatch(/^split is cheaper/);
    const text = explainLowered(large, false);
    expect(text).toMatch(/doraLinear\[[^\]]*schedule=split[^\]]*why=split is cheaper/);
    expect(text).toMatch(/doraStats\[/);
    expect(printDoraReport([l!])).toMatch(/^DoRA layer arg0\.w \[64×64\]: split schedule — split is cheaper.*\n {2}forward: 2 dispatches \(k\d+_custom, k\d+_custom\)\n {2}backward: 0 dispatches\n {2}tensors shaped like W: none$/);
  });
});

describe("DoRA kernels and the adapter's workgroup memory", () => {
  // the compose stages (tm + tn)·r floats and the differentiated norm's backward columns of an
  // r × r matrix, so tiles, steps and chunks shrink as the rank grows
  const workgroupBytes = (wgsl: string) => 4 * Number(/var<workgroup> sm: array<f32, (\d+)>/.exec(wgsl)?.[1] ?? 0);
  const targetOf = (bytes: number) => ({ ...gpu.target, limits: { ...gpu.target.limits, maxComputeWorkgroupStorageSize: bytes } });
  for (const [kib, ranks] of [[16, [1, 8, 16, 32, 64, 128]], [32, [1, 8, 16, 64, 128, 256]]] as const) {
    it(`every kernel fits ${kib} KiB at ranks up to ${ranks.at(-1)}: both norm modes and schedules, with and without dropout`, () => {
      for (const rank of ranks) {
        for (const detach of [true, false]) {
          for (const schedule of ["single", "split"] as const) {
            for (const dropout of [0, 0.1]) {
              const lowered = lowerDora(gradGraph({ lead: [96], inDim: 80, out: 72, rank, detach, dropout }), targetOf(kib * 1024), schedule);
              const [layer] = doraReport(lowered);
              const used = [...layer!.forward, ...layer!.backward].map((k) => workgroupBytes(lowered.plan.kernels.find((p) => p.name === k)!.wgsl));
              expect(used).toHaveLength(schedule === "single" ? 3 : 4);
              expect(Math.max(...used), `rank ${rank}, ${schedule}, detach ${detach}, dropout ${dropout}`).toBeLessThanOrEqual(kib * 1024);
              expect(Math.min(...used)).toBeGreaterThan(0);
            }
          }
        }
      }
    });
  }

  it("a rank too large for the adapter is a compile error naming the layer and the limit", () => {
    expect(() => lowerDora(gradGraph({ lead: [4], inDim: 16, out: 16, rank: 512 }), targetOf(16384), "split")).toThrow(
      /^doraStats: a DoRA layer of 16 outputs × 16 inputs, batch 4, rank 512 needs \d+ bytes of workgroup memory, more than the adapter's maxComputeWorkgroupStorageSize \(16384\); use a smaller rank/,
    );
  });
});

describe("models compile to the fused kernels", () => {
  it("with aux outputs (hasAux) and through vjp, two stacked layers run their forward once each", () => {
    type F = Tensor<number[], "f32">;
    const opts = { rank: 3, alpha: 6 };
    const layerSpec = { w: spec([12, 12]), b: spec([12]), loraA: spec([3, 12]), loraB: spec([12, 3]), m: spec([12]) };
    const net = (p: { l1: never; l2: never }, x: F): F => doraLinear.apply(p.l2, doraLinear.apply(p.l1, x as never, opts) as never, opts) as F;
    const withAux = trace((p: never, x: never) => {
      const loss = (q: { l1: never; l2: never }) => {
        const y = net(q, x);
        return [y.mul(y).mean(), { top: y.max() }] as const;
      };
      const [[l, aux], g] = valueAndGrad(loss, { hasAux: true })(p) as unknown as [[F, { top: F }], { l1: { loraA: F }; l2: { loraA: F } }];
      return [l, aux.top, g.l1.loraA, g.l2.loraA];
    }, [{ l1: layerSpec, l2: layerSpec }, spec([5, 12])] as never).graph;
    const viaVjp = trace((p: never, x: never) => {
      const [y, back] = vjp((q: never) => net(q, x), p);
      const [g] = back(y as never) as unknown as [{ l1: { loraA: F } }];
      return [y, g.l1.loraA];
    }, [{ l1: layerSpec, l2: layerSpec }, spec([5, 12])] as never).graph;
    for (const g of [withAux, viaVjp]) {
      const layers = doraReport(lowerDora(g, gpu.target, "single"));
      expect(layers.map((l) => [l.forward.length, l.backward.length])).toEqual([[1, 2], [1, 2]]);
    }
  });

  const LM = { vocab: 13, dim: 16, heads: 2, hidden: 32, layers: 1, maxSeq: 8 } as const;
  const CFG = { kind: "dora", targets: ["q", "v", "up"], rank: 4, alpha: 8 } as const;
  const setup = () => {
    const base = evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(1)]);
    const params = evaluate((k: never, p: never) => adapt(k, p, CFG as never).params, [randomKey(2), base] as never);
    return { params, trainable: adapterMask(params as never) };
  };
  const ids = spec([2, 6], "i32");

  it("an AdamW step of a DoRA transformer written with mergeAdapters", () => {
    const { params, trainable } = setup();
    const opt = adamw({ lr: 1e-2, mask: trainable as never });
    const state = evaluate((p: never) => opt.init(p), [params] as never);
    const loss = (p: never, x: never, y: never) => crossEntropy(nn.transformerLM.apply(mergeAdapters(p, CFG as never) as never, x, { heads: LM.heads }) as never, y as never);
    const step = trace((p: never, s: never, x: never, y: never) => {
      const [l, g] = valueAndGrad(loss, { trainable: trainable as never })(p, x, y);
      return { loss: l, ...opt.update(g, s, p) };
    }, [specsOf(params), specsOf(state), ids, ids] as never);
    const layers = doraReport(lowerGraph(step.graph, { target: gpu.target }));
    expect(layers.map((l) => [l.forward.length >= 1 && l.forward.length <= 2, l.backward.length, l.weightSized])).toEqual([[true, 2, []], [true, 2, []], [true, 2, []]]);
  });

  it("nn.transformerLM with its adapters option: the factored path, dropout drawn per layer", () => {
    const { params, trainable } = setup();
    const opts = { ...CFG, dropout: 0.1 };
    const loss = (p: never, x: never, y: never, k: never) => crossEntropy(nn.transformerLM.apply(p, x, { heads: LM.heads, adapters: opts, key: k }) as never, y as never);
    const g = trace((p: never, x: never, y: never, k: never) => valueAndGrad(loss, { trainable: trainable as never })(p, x, y, k), [specsOf(params), ids, ids, spec([2], "u32")] as never).graph;
    const dora = g.nodes.filter((n) => n.op === "doraLinear" && !n.attrs.save);
    expect(dora.map((n) => n.attrs.rate)).toEqual([0.1, 0.1, 0.1]);
    // each layer draws its own mask: three different keys
    expect(new Set(dora.map((n) => n.inputs[6]!.id)).size).toBe(3);
    const layers = doraReport(lowerGraph(g, { target: gpu.target }));
    expect(layers.map((l) => [l.backward.length, l.weightSized])).toEqual([[2, []], [2, []], [2, []]]);
  });
});
