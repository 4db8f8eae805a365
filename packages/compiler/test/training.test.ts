// A real training step through `compile`: AdamW over a DoRA-adapted transformer LM (frozen
// base, trainable adapters, optimizer moments only for those), parameters and optimizer state
// both kept on the GPU and updated in place, against the interpreter running the same step.
import { describe, expect, it } from "vitest";
import { adamw, adapt, adapterMask, crossEntropy, evaluate, HostTensor, mergeAdapters, nn, randomKey, run, specsOf, trace, valueAndGrad } from "@dorafuse/core";
import { compile } from "@dorafuse/compiler";
import { withSeed, type Rng } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectTreeClose } from "./support/trees.js";

const gpu = useDevice();
const LM = { vocab: 13, dim: 16, heads: 2, hidden: 32, layers: 1, maxSeq: 8 } as const;
const CFG = { kind: "dora", targets: ["q", "v", "up"], rank: 4, alpha: 8 } as const;
const ids = (rng: Rng) => new HostTensor([2, 6], Float64Array.from({ length: 12 }, () => rng.int(0, LM.vocab - 1)), "i32");
function roundTree(tree: unknown): unknown {
  if (tree instanceof HostTensor) return tree.dtype === "f32" ? new HostTensor(tree.shape, tree.data.map(Math.fround), tree.dtype) : tree;
  if (Array.isArray(tree)) return tree.map(roundTree);
  if (tree && typeof tree === "object") return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, roundTree(v)]));
  return tree;
}

describe("training", () => {
  it("AdamW on a DoRA-adapted transformer: 8 steps with parameters and moments on the GPU match the interpreter", () =>
    withSeed(async (rng) => {
      const base = evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(rng.int(0, 1e6))]);
      const params = roundTree(evaluate((k: never, p: never) => adapt(k, p, CFG as never).params, [randomKey(rng.int(0, 1e6)), base] as never));
      const trainable = adapterMask(params as never);
      const opt = adamw({ lr: 1e-2, mask: trainable as never, weightDecay: 0.01 } as never);
      const state = evaluate((p: never) => opt.init(p), [params] as never);
      const loss = (p: never, x: never, y: never) => crossEntropy(nn.transformerLM.apply(mergeAdapters(p, CFG as never) as never, x, { heads: LM.heads }) as never, y as never);
      const step = (p: never, s: never, x: never, y: never) => {
        const [l, g] = valueAndGrad(loss, { trainable: trainable as never })(p, x, y);
        const next = opt.update(g, s, p);
        return { loss: l, params: next.params, opt: next.state };
      };
      const batches = Array.from({ length: 8 }, () => [ids(rng), ids(rng)]);
      const traced = trace(step as never, specsOf([params, state, ...batches[0]!]) as never);
      const compiled = await compile(step as never, [params, state, ...batches[0]!], { device: gpu.device, state: { params: 0, opt: 1 } });
      expect(compiled.lowered.totals.copies).toBe(0);
      let ref: { params: unknown; opt: unknown } = { params, opt: state };
      for (const [k, [x, y]] of batches.entries()) {
        const want = run(traced, [ref.params, ref.opt, x, y] as never) as { loss: HostTensor; params: unknown; opt: unknown };
        ref = want;
        const got = (await compiled.run(x, y)) as { loss: HostTensor };
        expectTreeClose(got.loss, want.loss, 1e-4, `loss at step ${k}`);
      }
      expectTreeClose(await compiled.getState(0), ref.params, 1e-4, "parameters after 8 steps");
      expectTreeClose(await compiled.getState(1), ref.opt, 1e-4, "optimizer state after 8 steps");
      compiled.dispose();
    }));
});
