// Whole models through `compile`: a two-layer MLP and a one-block transformer language model —
// the forward pass, valueAndGrad, and 20 SGD steps with the parameters kept on the GPU — against
// the float64 interpreter running the same traced step, with fusion on and off.
import { describe, it } from "vitest";
import { crossEntropy, evaluate, HostTensor, mse, nn, randomKey, run, specsOf, trace, valueAndGrad, type Tensor } from "@dorafuse/core";
import { compile } from "@dorafuse/compiler";
import { withSeed, type Rng } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectTreeClose, sgd } from "./support/trees.js";

const gpu = useDevice();

const randomHost = (rng: Rng, shape: number[]) => new HostTensor(shape, Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.fround(rng.uniform(-1, 1))), "f32");
const randomIds = (rng: Rng, shape: number[], vocab: number) => new HostTensor(shape, Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(0, vocab - 1)), "i32");
/** Parameters as the device holds them (f32-rounded), so both sides start identical. */
function roundTree(tree: unknown): unknown {
  if (tree instanceof HostTensor) return new HostTensor(tree.shape, tree.data.map(Math.fround), tree.dtype);
  if (Array.isArray(tree)) return tree.map(roundTree);
  if (tree && typeof tree === "object") return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, roundTree(v)]));
  return tree;
}

interface Model {
  name: string;
  init(seed: number): unknown;
  batch(rng: Rng): unknown[];
  loss(params: never, ...batch: never[]): Tensor;
  forward(params: never, ...batch: never[]): Tensor;
  lr: number;
}

const MLP: Model = {
  name: "two-layer MLP",
  init: (seed) => evaluate((k) => nn.mlp.init(k, { dim: 8, hidden: 17 }), [randomKey(seed)]),
  batch: (rng) => [randomHost(rng, [4, 3, 8]), randomHost(rng, [4, 3, 8])],
  forward: (p, x) => nn.mlp.apply(p as never, x as never) as Tensor,
  loss: (p, x, y) => mse(nn.mlp.apply(p as never, x as never) as never, y as never) as Tensor,
  lr: 0.1,
};

const LM = { vocab: 11, dim: 16, heads: 2, hidden: 24, layers: 1, maxSeq: 6 } as const;
const TRANSFORMER: Model = {
  name: "one-block transformer LM",
  init: (seed) => evaluate((k) => nn.transformerLM.init(k, LM), [randomKey(seed)]),
  batch: (rng) => [randomIds(rng, [2, 5], LM.vocab), randomIds(rng, [2, 5], LM.vocab)],
  forward: (p, ids) => nn.transformerLM.apply(p as never, ids as never, { heads: LM.heads }) as Tensor,
  loss: (p, ids, labels) => crossEntropy(nn.transformerLM.apply(p as never, ids as never, { heads: LM.heads }) as never, labels as never) as Tensor,
  lr: 0.05,
};

for (const model of [MLP, TRANSFORMER]) {
  describe(model.name, () => {
    for (const fusion of [true, false]) {
      const mode = fusion ? "fused" : "unfused";
      it(`forward matches the interpreter (${mode})`, () =>
        withSeed(async (rng) => {
          const params = roundTree(model.init(rng.int(0, 1e6)));
          const batch = model.batch(rng);
          const f = (p: never, x: never) => model.forward(p, x);
          const want = run(trace(f, specsOf([params, batch[0]]) as never), [params, batch[0]] as never);
          const compiled = await compile(f, [params, batch[0]], { device: gpu.device, fusion });
          expectTreeClose(await compiled.run(params, batch[0]), want, 1e-5, `${model.name} forward`);
          compiled.dispose();
        }));
      it(`valueAndGrad matches the interpreter (${mode})`, () =>
        withSeed(async (rng) => {
          const params = roundTree(model.init(rng.int(0, 1e6)));
          const batch = model.batch(rng);
          const f = (p: never, x: never, y: never) => valueAndGrad((q: never, a: never, b: never) => model.loss(q, a, b))(p, x, y);
          const args = [params, ...batch];
          const want = run(trace(f, specsOf(args) as never), args as never);
          const compiled = await compile(f, args, { device: gpu.device, fusion });
          expectTreeClose(await compiled.run(...args), want, 1e-4, `${model.name} valueAndGrad`);
          compiled.dispose();
        }));
      it(`20 SGD steps with the parameters on the GPU match the interpreter (${mode})`, () =>
        withSeed(async (rng) => {
          const init = roundTree(model.init(rng.int(0, 1e6)));
          const batches = Array.from({ length: 20 }, () => model.batch(rng));
          const step = (p: never, x: never, y: never) => {
            const [loss, grads] = valueAndGrad((q: never, a: never, b: never) => model.loss(q, a, b))(p, x, y);
            return { params: sgd(p, grads, model.lr), loss };
          };
          const traced = trace(step, specsOf([init, ...batches[0]!]) as never);
          const compiled = await compile(step, [init, ...batches[0]!], { device: gpu.device, fusion, state: { params: 0 } });
          let ref = init;
          for (const [k, batch] of batches.entries()) {
            const want = run(traced, [ref, ...batch] as never) as { params: unknown; loss: HostTensor };
            ref = want.params;
            const got = (await compiled.run(...batch)) as { loss: HostTensor };
            expectTreeClose(got.loss, want.loss, 1e-4, `loss at step ${k}`);
          }
          expectTreeClose(await compiled.getState(0), ref, 1e-4, `${model.name} parameters after 20 steps`);
          compiled.dispose();
        }));
    }
  });
}
