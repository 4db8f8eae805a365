// trainStep on a small DoRA model: 50 steps on the GPU against the same traced step run in
// the float32 interpreter, and the loss going down; then checkpoints: a run stopped at step
// 25, saved and resumed in a fresh step ends bit-identical to the uninterrupted one, and a
// save interrupted before its rename leaves the previous checkpoint loadable.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HostTensor, run, trace } from "@dorafuse/core";
import { trainStep } from "@dorafuse/compiler";
import { CheckpointError, type ShapedArray } from "@dorafuse/runtime";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectTreeClose } from "./support/trees.js";
import { doraMlp, optimizerFor } from "./support/train-model.js";

const gpu = useDevice();
const STEPS = 50;
const folder = () => mkdtempSync(join(tmpdir(), "dorafuse-train-"));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** Every state tensor of two steps equal bit for bit (NaN payloads and -0 included). */
function expectBitIdentical(got: Record<string, ShapedArray>, want: Record<string, ShapedArray>, what: string): void {
  expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
  for (const [key, g] of Object.entries(got)) {
    const a = new Uint8Array(g.data.buffer, g.data.byteOffset, g.data.byteLength);
    const w = want[key]!.data;
    const b = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), `${what}: ${key} differs`).toBe(0);
  }
}

describe("trainStep on a DoRA model", () => {
  it("50 AdamW steps on the GPU match the float32 interpreter, step by step and over the whole run, and the loss goes down", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const train = await trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, key: rng.int(0, 1e6), adapter: m.cfg, device: gpu.device });
      const traced = trace(train.fn as never, train.specs as never);
      type Out = { params: unknown; opt: unknown; step: HostTensor; key: HostTensor; stats: HostTensor };
      const interpret = (state: readonly unknown[], b: unknown) => run(traced, [...state, b] as never, { mode: "f32" }) as Out;
      const gpuState = async () => {
        const [step, key] = [(await train.readState("step")) as ShapedArray, (await train.readState("key")) as ShapedArray];
        return [await train.params(), await train.optState(), new HostTensor([], Float64Array.from(step.data), "i32"), new HostTensor([2], Float64Array.from(key.data), "u32")];
      };
      let state = train.initialArgs as unknown[];
      const gpuLoss: Promise<number>[] = [];
      const refLoss: number[] = [];
      for (let k = 0; k < STEPS; k++) {
        const b = m.batches[k % m.batches.length]!;
        // every tenth step, one step from the GPU's own state: float32 rounding of a single step
        const from = k % 10 === 9 ? await gpuState() : undefined;
        const r = await train.step(b);
        expect(r.step).toBe(k + 1);
        gpuLoss.push(r.loss);
        const out = interpret(state, b);
        state = [out.params, out.opt, out.step, out.key];
        refLoss.push(out.stats.data[0]!);
        if (from) {
          const one = interpret(from, b);
          expect(rel(await r.loss, one.stats.data[0]!), `loss of step ${k + 1} from the GPU's state`).toBeLessThan(1e-5);
          expectTreeClose(await train.params(), one.params, 1e-5, `parameters after step ${k + 1} from the GPU's state`);
          expectTreeClose(await train.optState(), one.opt, 1e-5, `optimizer state after step ${k + 1} from the GPU's state`);
        }
      }
      // Run freely, the two trajectories drift apart as Adam amplifies rounding differences:
      // measured over seeds, 1e-7 at step 1 growing to 2e-5–1e-4 at step 50 (each single step
      // stays within 1e-5, as checked above).
      const losses = await Promise.all(gpuLoss);
      losses.forEach((l, k) => expect(rel(l, refLoss[k]!), `loss at step ${k + 1}: GPU ${l}, interpreter ${refLoss[k]}`).toBeLessThan(1e-5 + 5e-6 * (k + 1)));
      expectTreeClose(await train.params(), state[0], 3e-4, "parameters after 50 steps");
      expectTreeClose(await train.optState(), state[1], 3e-4, "optimizer state after 50 steps");
      expect(Array.from(((await train.readState("step")) as ShapedArray).data)).toEqual([STEPS]);
      const first = losses.slice(0, 4).reduce((a, b) => a + b) / 4;
      const last = losses.slice(-4).reduce((a, b) => a + b) / 4;
      expect(last, `loss went from ${first} to ${last}`).toBeLessThan(0.8 * first);
      train.dispose();
    }));

  it("stopped at step 25, checkpointed and resumed in a fresh step, 50 steps end bit-identical to an uninterrupted run", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const seed = rng.int(0, 1e6);
      const make = () => trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, key: seed, adapter: m.cfg, device: gpu.device });
      const batch = (k: number) => m.batches[(k * 3) % m.batches.length]!;
      const whole = await make();
      for (let k = 0; k < STEPS; k++) await whole.step(batch(k));
      const want = (await whole.readState()) as Record<string, ShapedArray>;
      whole.dispose();

      const path = join(folder(), "step-25.safetensors");
      const first = await make();
      for (let k = 0; k < 25; k++) await first.step(batch(k));
      await first.save(path, { metadata: { note: "halfway" } });
      first.dispose();
      const resumed = await make();
      expect(resumed.stepCount).toBe(0);
      await resumed.restore(path);
      expect(resumed.stepCount).toBe(25);
      for (let k = 25; k < STEPS; k++) expect((await resumed.step(batch(k))).step).toBe(k + 1);
      expectBitIdentical((await resumed.readState()) as Record<string, ShapedArray>, want, "resumed at 25 vs uninterrupted");
      expect(Array.from(want["opt.count"]!.data)).toEqual([STEPS]);
      resumed.dispose();
    }));

  it("a save interrupted between its temporary file and the rename leaves the previous checkpoint loadable", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const make = () => trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, key: 7, device: gpu.device });
      const train = await make();
      const path = join(folder(), "last.safetensors");
      for (let k = 0; k < 3; k++) await train.step(m.batches[k]!);
      await train.save(path);
      const saved = (await train.readState()) as Record<string, ShapedArray>;
      for (let k = 3; k < 5; k++) await train.step(m.batches[k % m.batches.length]!);
      let temporary = "";
      const failed = await train
        .save(path, {
          beforeRename: (t) => {
            temporary = t;
            throw new Error("simulated crash");
          },
        })
        .catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(CheckpointError);
      expect((failed as Error).message).toMatch(/writing failed, the previous file \(if any\) is untouched: simulated crash/);
      expect(temporary).toContain(".last.safetensors.");
      train.dispose();
      const fresh = await make();
      await fresh.restore(path);
      expect(fresh.stepCount).toBe(3);
      expectBitIdentical((await fresh.readState()) as Record<string, ShapedArray>, saved, "restored after the interrupted save");
      fresh.dispose();
    }));

  it("a checkpoint with a missing, extra or misshapen tensor is refused, naming each, before the state is touched", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const train = await trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, device: gpu.device });
      await train.step(m.batches[0]!);
      const before = (await train.readState()) as Record<string, ShapedArray>;
      const good = (await train.readState()) as Record<string, ShapedArray>;
      const tensors = Object.fromEntries(
        Object.entries(good)
          .filter(([k]) => k !== "step" && k !== "key" && k !== "params.l1.m")
          .map(([k, v]) => [k, { dtype: v.data instanceof Int32Array ? ("I32" as const) : ("F32" as const), shape: k === "params.l2.loraB" ? [1, 1] : [...v.shape], data: k === "params.l2.loraB" ? new Float32Array(1) : v.data }]),
      );
      tensors["params.l1.extra"] = { dtype: "F32", shape: [1], data: new Float32Array(1) };
      const error = await train.restore({ tensors, step: 9, rngKey: [1, 2] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      const message = (error as Error).message;
      expect(message).toMatch(/"params\.l1\.m": missing, expected F32\[16\]/);
      expect(message).toMatch(/"params\.l1\.extra": not expected, found F32\[1\]/);
      expect(message).toMatch(/"params\.l2\.loraB": expected F32\[4,2\], found F32\[1,1\] \(wrong shape\)/);
      expect(train.stepCount).toBe(1);
      expectBitIdentical((await train.readState()) as Record<string, ShapedArray>, before, "state after a refused restore");
      train.dispose();
    }));
});
