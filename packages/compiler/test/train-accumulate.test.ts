// Gradient accumulation inside the one graph equals the big-batch step, and evalStep matches
// the interpreter — on its own parameters, and following a TrainStep's on the GPU.
import { describe, expect, it } from "vitest";
import { HostTensor, run, sgd, spec, trace } from "@dorafuse/core";
import { evalStep, trainStep } from "@dorafuse/compiler";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectTreeClose } from "./support/trees.js";
import { BATCH, doraMlp, IN, optimizerFor } from "./support/train-model.js";

const gpu = useDevice();
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

describe("gradient accumulation", () => {
  it("4 micro-batches of 2 in one graph take the same steps as one batch of 8", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng, { dropout: 0 });
      const opt = () => sgd({ lr: 0.2, momentum: 0.9, mask: m.trainable });
      const big = await trainStep(m.loss, opt(), { params: m.params, batch: m.batchSpec, trainable: m.trainable, device: gpu.device });
      const micro = await trainStep(m.loss, opt(), { params: m.params, batch: { x: spec([2, IN]), y: spec([2], "i32") }, trainable: m.trainable, accumulate: 4, device: gpu.device });
      expect(micro.program.manifest.args.map((a) => [a.label, a.shape])).toEqual([["batch.x", [4, 2, IN]], ["batch.y", [4, 2]]]);
      for (let k = 0; k < 4; k++) {
        const b = m.batches[k]!;
        const stacked = { x: new HostTensor([4, 2, IN], b.x.data, "f32"), y: new HostTensor([4, 2], b.y.data, "i32") };
        const [one, acc] = await Promise.all([big.step(b), micro.step(stacked)]);
        const [l1, l2, a1, a2] = await Promise.all([one.loss, acc.loss, one.metrics.then((x) => x.accuracy!), acc.metrics.then((x) => x.accuracy!)]);
        expect(rel(l2, l1), `loss at step ${k + 1}: accumulated ${l2}, big batch ${l1}`).toBeLessThan(1e-5);
        expect(a2, `accuracy at step ${k + 1}`).toBeCloseTo(a1, 6);
      }
      expectTreeClose(await micro.params(), await big.params(), 2e-5, "parameters after 4 accumulated steps vs 4 big-batch steps");
      expectTreeClose(await micro.optState(), await big.optState(), 2e-5, "momentum after 4 steps");
      big.dispose();
      micro.dispose();
    }));

  it("accumulate must be a positive integer", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const made = trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, accumulate: 0, device: gpu.device });
      await expect(made).rejects.toThrow(/accumulate must be a positive integer \(micro-batches per step\), found 0/);
    }));

  it("an optimizer that keeps moments for frozen parameters is refused, naming them", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const made = trainStep(m.loss, sgd({ lr: 0.1, momentum: 0.9 }), { params: m.params, batch: m.batchSpec, trainable: m.trainable, device: gpu.device });
      await expect(made).rejects.toThrow(/sgd keeps optimizer state for 4 frozen parameters \(l1\.b, l1\.w, l2\.b, …\): build it with mask: trainable/);
    }));
});

describe("evalStep", () => {
  it("the loss and metrics of a batch match the interpreter, without dropout", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const ev = await evalStep(m.loss, { params: m.params, batch: m.batchSpec, device: gpu.device });
      const traced = trace(ev.fn as never, ev.specs as never);
      for (const b of m.batches) {
        const want = (run(traced, [m.params, b] as never) as { stats: HostTensor }).stats.data;
        const got = await ev.evaluate(b);
        const again = await ev.evaluate(b);
        expect(rel(await got.loss, want[0]!), `loss: GPU ${await got.loss}, interpreter ${want[0]}`).toBeLessThan(1e-5);
        expect((await got.metrics).accuracy).toBeCloseTo(want[1]!, 6);
        expect(await again.loss, "evaluation is deterministic").toBe(await got.loss);
      }
      ev.dispose();
    }));

  it("following a TrainStep, it evaluates the parameters the training step has reached", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const train = await trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, device: gpu.device });
      const ev = await evalStep(m.loss, { params: train, batch: m.batchSpec });
      const traced = trace(ev.fn as never, ev.specs as never);
      const b = m.batches[1]!;
      const at0 = await (await ev.evaluate(b)).loss;
      for (let k = 0; k < 6; k++) await train.step(m.batches[k % m.batches.length]!);
      const at6 = await (await ev.evaluate(b)).loss;
      const want0 = (run(traced, [m.params, b] as never) as { stats: HostTensor }).stats.data[0]!;
      const want6 = (run(traced, [await train.params(), b] as never) as { stats: HostTensor }).stats.data[0]!;
      expect(rel(at0, want0), "before training").toBeLessThan(1e-5);
      expect(rel(at6, want6), "after 6 steps").toBeLessThan(1e-5);
      expect(at6).not.toBe(at0);
      expect(BATCH).toBe(m.batchSpec.x.shape[0]);
      ev.dispose();
      train.dispose();
    }));
});
