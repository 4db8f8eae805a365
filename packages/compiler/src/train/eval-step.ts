// evalStep(loss, options): the loss and metrics of a batch as one compiled graph, with the
// context's `training: false` (no dropout). The parameters are the program's state: given as
// host tensors they are uploaded once; given as a TrainStep they follow it — before an
// evaluation, if the training step has run since the last one, its parameters are copied
// over on the GPU (nothing goes through the host).
import { loadCompiled, type CheckpointSource, type CompiledProgram, type Device, type EvalResult, type RestoreCompiledOptions, type ShapedArray } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import { targetOf, type Target } from "../limits.js";
import { specTree } from "../trace-call.js";
import type { LoweredGraph } from "../compile-graph.js";
import { toShaped, type BatchInput } from "./batch.js";
import { allHost, lowerProgram, stateTensors, type GraphOptions, type Program } from "./program.js";
import { evalFunction, type StepFunction } from "./step-fn.js";
import { defaultDevice, TrainStep, type TypedLoss } from "./train-step.js";

export interface EvalStepOptions<P = unknown, B = unknown> extends GraphOptions {
  /** Host tensors (uploaded once), specs (ahead of time), or a TrainStep whose parameters to follow. */
  readonly params: P | TrainStep<P, B>;
  /** Specs (or example tensors) of one batch. */
  readonly batch: B;
  readonly dims?: Readonly<Record<string, number>>;
  readonly device?: Device;
}

export interface PreparedEval extends Program {
  fn: StepFunction<[unknown, unknown], unknown>;
  specs: unknown[];
  initial?: { tensors: ReturnType<typeof stateTensors>; step: number };
}

/** Traces and lowers an evaluation step (shared with `dorafuse compile`). */
export function prepareEval(entry: string, loss: TypedLoss<never, never>, options: EvalStepOptions, target: Target): PreparedEval {
  const source = options.params instanceof TrainStep ? options.params : undefined;
  const params = source ? source.specs[0] : options.params;
  const fn = evalFunction(loss as never);
  const specs = [specTree(params), specTree(options.batch)];
  const { fusion, optimize, limits, maxFusedRow, dims } = options;
  const program = lowerProgram(fn as never, specs, {
    entry,
    kind: "eval",
    target,
    names: ["params", "batch"],
    state: { params: 0 },
    roles: { 0: "param" },
    metrics: () => fn.metrics,
    fusion, optimize, limits, maxFusedRow, dims,
  });
  const host = !source && allHost(params);
  return { ...program, fn, specs, ...(host ? { initial: { tensors: stateTensors(program.manifest, [params]), step: 0 } } : {}) };
}

export class EvalStep<P = unknown, B = unknown> {
  readonly program: CompiledProgram;
  readonly lowered: LoweredGraph;
  /** The evaluation as a pure function of (params, batch), with its argument specs. */
  readonly fn: PreparedEval["fn"];
  readonly specs: readonly unknown[];
  readonly #source: TrainStep<P, B> | undefined;
  #synced = -1;

  constructor(prepared: PreparedEval, program: CompiledProgram, source: TrainStep<P, B> | undefined) {
    this.program = program;
    this.lowered = prepared.lowered;
    this.fn = prepared.fn;
    this.specs = prepared.specs;
    this.#source = source;
  }

  /** Queues the evaluation; the loss and metrics resolve when the GPU has run it. */
  async evaluate(batch: BatchInput<B>): Promise<EvalResult> {
    const source = this.#source?.program;
    if (source && source.version !== this.#synced) {
      await this.program.copyStateFrom(source);
      this.#synced = source.version;
    }
    return this.program.evaluate(toShaped(batch));
  }

  readState(key?: string): Promise<unknown> {
    return this.program.readState(key);
  }
  writeState(key: string, value: ShapedArray): Promise<void> {
    return this.program.writeState(key, value);
  }
  /** The parameters from a checkpoint (a training checkpoint's optimizer state is ignored). */
  restore(source: CheckpointSource, options: RestoreCompiledOptions = { allowExtra: true }): Promise<void> {
    return this.program.restore(source, options);
  }

  dispose(): void {
    this.program.dispose();
  }
}

/** Compiles and loads an evaluation step (see the top of this file). */
export async function evalStep<P, B>(loss: TypedLoss<P, B>, options: EvalStepOptions<P, B>): Promise<EvalStep<P, B>> {
  const source = options.params instanceof TrainStep ? (options.params as TrainStep<P, B>) : undefined;
  const device = options.device ?? source?.program.device ?? (await defaultDevice());
  if (source && source.program.device !== device) throw new CompileError("evalStep: the TrainStep it follows runs on another device", "evalStep");
  const prepared = prepareEval("evalStep", loss as TypedLoss<never, never>, options as EvalStepOptions, targetOf(device));
  if (!source && !prepared.initial) throw new CompileError("evalStep needs the parameters' values (host tensors) or a TrainStep to follow", "evalStep");
  const program = await loadCompiled(device, prepared.manifest);
  if (prepared.initial) await program.restore({ ...prepared.initial, path: "the parameters given" });
  return new EvalStep<P, B>(prepared, program, source);
}
