// The training loop of one phase (pretraining, or fine-tuning with one method) on a compiled
// training step, with periodic validation on the compiled evaluation step that follows it,
// checkpoints at chosen steps, and the progress bar. Also the evaluation pass on its own and
// the warm-up that builds every GPU pipeline before anything is timed.
import { join } from "node:path";
import type { CompiledProgram } from "@dorafuse/runtime";
import { bitsPerByte, type Batch as DataBatch, type BatchSampler } from "./data.js";
import { Progress, type ProgressStream } from "./progress.js";
import type { EntryName } from "./model.js";

/** A data batch as the compiled steps take it: `{ inputs, targets }`, each `{ shape, data }`. */
export function stepBatch(b: DataBatch) {
  const shape = [b.batch, b.seq];
  return { inputs: { shape, data: b.inputs }, targets: { shape, data: b.targets } };
}

/**
 * The mean loss (nats per byte) of `evaluator` over `batches`, after copying the parameters of
 * `source` into it on the GPU (when given). Every batch has the same number of bytes.
 */
export async function evaluateLoss(evaluator: CompiledProgram, batches: readonly DataBatch[], source?: CompiledProgram): Promise<number> {
  if (source) await evaluator.copyStateFrom(source);
  const pending: Promise<number>[] = [];
  // each call only queues its batch (in order); the losses resolve as the GPU gets there
  for (const b of batches) pending.push((await evaluator.evaluate(stepBatch(b))).loss);
  const losses = await Promise.all(pending);
  return losses.reduce((s, l) => s + l, 0) / losses.length;
}

export interface PhaseOptions {
  readonly label: string;
  readonly train: CompiledProgram;
  /** The evaluation step for this tree; validation runs every `evalEvery` steps and at the end. */
  readonly evaluator: CompiledProgram;
  readonly sampler: BatchSampler;
  readonly steps: number;
  readonly validation: readonly DataBatch[];
  readonly evalEvery: number;
  /** Steps after which to save a checkpoint, and where. */
  readonly checkpointSteps: readonly number[];
  readonly checkpointPath: (step: number) => string;
  readonly stream?: ProgressStream;
  /** Validation loss before the first step (when the caller measured it), for the curve. */
  readonly initialValidation?: number;
}

export interface PhaseResult {
  /** [step, training loss] of every step. */
  readonly train: [number, number][];
  /** [step, validation loss]. */
  readonly validation: [number, number][];
  /** Milliseconds of each step: submit, run on the GPU, read the loss back. */
  readonly stepMs: number[];
  readonly checkpoints: { step: number; path: string }[];
  readonly seconds: number;
}

export async function runPhase(o: PhaseOptions): Promise<PhaseResult> {
  const started = performance.now();
  const tokens = o.sampler.options.batch * o.sampler.options.seq;
  const bar = new Progress({ total: o.steps, label: o.label, ...(o.stream ? { stream: o.stream } : {}) });
  const result: PhaseResult = { train: [], validation: [], stepMs: [], checkpoints: [], seconds: 0 };
  if (o.initialValidation !== undefined) result.validation.push([0, o.initialValidation]);
  for (let step = 1; step <= o.steps; step++) {
    const t0 = performance.now();
    const r = await o.train.step(stepBatch(o.sampler.next()));
    const loss = await r.loss;
    result.stepMs.push(performance.now() - t0);
    result.train.push([step, loss]);
    bar.update(step, { loss, tokens });
    if (!Number.isFinite(loss)) throw new Error(`${o.label}: the training loss is ${loss} at step ${step}; lower the learning rate`);
    if (step % o.evalEvery === 0 || step === o.steps) {
      const v = await evaluateLoss(o.evaluator, o.validation, o.train);
      result.validation.push([step, v]);
      bar.log(`${o.label} step ${step}: validation ${v.toFixed(4)} nats/byte (${bitsPerByte(v).toFixed(3)} bits/byte)`);
    }
    if (o.checkpointSteps.includes(step)) {
      const path = o.checkpointPath(step);
      await o.train.save(path, { metadata: { phase: o.label } });
      result.checkpoints.push({ step, path });
    }
  }
  bar.done();
  return { ...result, seconds: (performance.now() - started) / 1000 };
}

/** `count` steps spread evenly over 1..steps, the last one included. */
export function spreadSteps(steps: number, count: number): number[] {
  const n = Math.max(1, Math.min(count, steps));
  return [...new Set(Array.from({ length: n }, (_, i) => Math.round(((i + 1) * steps) / n)))];
}

/**
 * Runs each program once so the GPU builds its pipelines now, outside the timed steps, then
 * puts each training step back to its initial checkpoint. lavapipe compiles a kernel with LLVM
 * on its first dispatch (Mesa caches the result on disk) and keeps a bounded number of them per
 * device, so programs are warmed right before the phase that uses them rather than all at once.
 * Returns the seconds it took.
 */
export async function warmUp(programs: readonly [EntryName, CompiledProgram][], genDir: string, sample: DataBatch): Promise<number> {
  const started = performance.now();
  for (const [name, p] of programs) {
    const kind = p.manifest.kind;
    if (kind === "train") {
      await (await p.step(stepBatch(sample))).loss;
      await p.restore(join(genDir, name, p.manifest.initial ?? "initial.safetensors"));
    } else if (kind === "eval") {
      await (await p.evaluate(stepBatch(sample))).loss;
    } else {
      const ids = p.manifest.args[0]!;
      await p.read([{ shape: ids.shape, data: new Int32Array(ids.shape.reduce((a, b) => a * b, 1)) }]);
    }
  }
  return (performance.now() - started) / 1000;
}
