// trainStep(loss, optimizer, options): a training step compiled into ONE graph — forward,
// backward (accumulated over micro-batches), clipping, the optimizer update, the step
// counter — and loaded once. Parameters, optimizer moments, the step counter and the random
// key are state: they stay on the GPU and are updated in place by every step. A step only
// queues work; its loss and metrics come back as promises that resolve when the GPU gets
// there (one 4-byte-per-value readback per step), so a loop that logs every N steps, or
// awaits the loss a few steps late, never waits on the GPU in between.
//
// The same preparation (prepareTrain) feeds `dorafuse compile`, so a step compiled ahead of
// time is this program, loaded by the runtime alone.
import { evaluate, flatten, HostTensor, hostTensor, randomKey, spec, trace, TensorSpec, unflatten, type HostOf, type Mask, type Optimizer, type TracersOf, type TreeDef } from "@dorafuse/core";
import { createDevice, loadCompiled, type CheckpointSource, type CompiledProgram, type Device, type PeftLoraConfig, type RestoreCompiledOptions, type SaveOptions, type ShapedArray, type StepResult } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import { explainLowered } from "../explain.js";
import { fromHostArray } from "../host.js";
import { targetOf, type Target } from "../limits.js";
import { specTree } from "../trace-call.js";
import type { LoweredGraph } from "../compile-graph.js";
import { toShaped, type BatchInput } from "./batch.js";
import { adapterInfo, writeMergedModel, type AdapterConfig } from "./export.js";
import { allHost, lowerProgram, stateTensors, type GraphOptions, type Program } from "./program.js";
import { checkAccumulate, trainFunction, type LossOutput, type StepContext, type StepFunction, type StepOutputs } from "./step-fn.js";

export interface TrainStepOptions<P = unknown, B = unknown> extends GraphOptions {
  /** The parameters: host tensors (their initial values) or, ahead of time only, specs. */
  readonly params: P;
  /** Specs (or example tensors) of ONE micro-batch; with `accumulate: k` the step takes k of them stacked on a leading axis. */
  readonly batch: B;
  /** valueAndGrad's mask (adapterMask(params) for adapters). Default: every float parameter trains. */
  readonly trainable?: Mask;
  /** Micro-batches per step (gradient accumulation inside the one graph). Default 1. */
  readonly accumulate?: number;
  /** The random key (u32[2]) or a seed for randomKey. Default seed 0. */
  readonly key?: number | HostTensor;
  /** The adapters' options, for PEFT export (lora_alpha, r, …) and exportMerged. */
  readonly adapter?: AdapterConfig;
  readonly dims?: Readonly<Record<string, number>>;
  readonly device?: Device;
}

/** The loss as trainStep and evalStep take it, typed from the parameter and batch trees. */
export type TypedLoss<P, B> = (params: TracersOf<P>, batch: TracersOf<B>, ctx: StepContext) => LossOutput;

export interface PreparedTrain extends Program {
  fn: StepFunction<Parameters<ReturnType<typeof trainFunction>>, StepOutputs>;
  /** The step's argument specs: params, opt, step, key, batch. */
  specs: unknown[];
  /** The initial state [params, opt, step, key] as host trees, when the params hold data. */
  initialArgs?: unknown[];
  initial?: { tensors: ReturnType<typeof stateTensors>; step: number; rngKey: number[] };
}

const isDescribed = (v: unknown): v is { shape: readonly number[] } => v instanceof HostTensor || v instanceof TensorSpec;

/** Dotted paths of the parameters `mask` freezes. */
function frozenPaths(tree: unknown, mask: unknown, path = ""): string[] {
  const join = (k: string | number) => (path ? `${path}.${k}` : `${k}`);
  if (isDescribed(tree)) return mask === true ? [] : [path];
  const sub = (k: string | number) => (typeof mask === "boolean" ? mask : ((mask as Record<string | number, unknown> | undefined)?.[k] ?? false));
  if (Array.isArray(tree)) return tree.flatMap((v, i) => frozenPaths(v, sub(i), join(i)));
  if (typeof tree === "object" && tree !== null) return Object.keys(tree).flatMap((k) => frozenPaths((tree as Record<string, unknown>)[k], sub(k), join(k)));
  return [];
}

/** Frozen weights take no optimizer memory: an optimizer built without the mask would keep moments for them. */
function checkFrozenMoments(opt: unknown, params: unknown, trainable: Mask | undefined, name: string): void {
  if (trainable === undefined || trainable === true) return;
  const at = (tree: unknown, path: string) => path.split(".").reduce<unknown>((t, k) => (t as Record<string, unknown> | null)?.[k], tree);
  const slots = Object.keys(opt as object).filter((k) => k !== "count");
  const kept = frozenPaths(params, trainable).filter((p) => slots.some((s) => isDescribed(at((opt as Record<string, unknown>)[s], p))));
  if (kept.length) {
    const some = kept.slice(0, 3).join(", ");
    throw new CompileError(`${name} keeps optimizer state for ${kept.length} frozen parameter${kept.length === 1 ? "" : "s"} (${some}${kept.length > 3 ? ", …" : ""}): build it with mask: trainable`, "trainStep");
  }
}

/** Traces and lowers a training step (shared with `dorafuse compile`). */
export function prepareTrain(entry: string, loss: TypedLoss<never, never>, optimizer: Optimizer, options: TrainStepOptions, target: Target): PreparedTrain {
  const accumulate = checkAccumulate(options.accumulate);
  const paramSpecs = specTree(options.params);
  const host = allHost(options.params);
  const opt: unknown = host
    ? evaluate((p: never) => optimizer.init(p), [options.params] as never)
    : trace((p: never) => optimizer.init(p), [paramSpecs] as never).resultSpecs();
  checkFrozenMoments(opt, options.params, options.trainable, optimizer.name);
  const key = options.key instanceof HostTensor ? options.key : randomKey(options.key ?? 0);
  if (key.dtype !== "u32" || key.shape.join() !== "2") throw new CompileError(`key must be a u32[2] random key, found ${key.dtype}[${key.shape.join(",")}]`, "trainStep");
  const [leaves, def] = flatten(specTree(options.batch), (v): v is TensorSpec => v instanceof TensorSpec);
  const batch = unflatten(def, accumulate === 1 ? leaves : leaves.map((s) => spec([accumulate, ...s.shape], s.dtype)));
  const fn = trainFunction(loss as never, optimizer, { ...(options.trainable !== undefined ? { trainable: options.trainable } : {}), accumulate });
  const specs = [paramSpecs, specTree(opt), spec([], "i32"), spec([2], "u32"), batch];
  const { fusion, optimize, limits, maxFusedRow, dims } = options;
  const program = lowerProgram(fn as never, specs, {
    entry,
    kind: "train",
    target,
    names: ["params", "opt", "step", "key", "batch"],
    state: { params: 0, opt: 1, step: 2, key: 3 },
    roles: { 0: "param", 1: "optimizer", 2: "step", 3: "key" },
    metrics: () => fn.metrics,
    adapter: adapterInfo(options.params, "params", options.adapter),
    fusion, optimize, limits, maxFusedRow, dims,
  });
  const initialArgs = host ? [options.params, opt, hostTensor([], [0], "i32"), key] : undefined;
  return {
    ...program,
    fn,
    specs,
    ...(initialArgs ? { initialArgs, initial: { tensors: stateTensors(program.manifest, initialArgs), step: 0, rngKey: Array.from(key.data) } } : {}),
  };
}

let shared: Promise<Device> | undefined;
export const defaultDevice = (): Promise<Device> => (shared ??= createDevice());

export class TrainStep<P = unknown, B = unknown> {
  readonly program: CompiledProgram;
  readonly lowered: LoweredGraph;
  /** The step as a pure function of (params, opt, step, key, batch): trace it with `specs` to run the same step in the interpreter. */
  readonly fn: PreparedTrain["fn"];
  readonly specs: readonly unknown[];
  /** The initial [params, opt, step, key] (host trees). */
  readonly initialArgs: readonly unknown[];
  readonly #defs: TreeDef[];
  readonly #adapter: AdapterConfig | undefined;

  constructor(prepared: PreparedTrain, program: CompiledProgram, adapter: AdapterConfig | undefined) {
    this.program = program;
    this.lowered = prepared.lowered;
    this.fn = prepared.fn;
    this.specs = prepared.specs;
    this.initialArgs = prepared.initialArgs ?? [];
    this.#defs = prepared.argDefs;
    this.#adapter = adapter;
  }

  /** Queues one step; resolves once it is submitted. Its loss and metrics resolve when the GPU has run it. */
  step(batch: BatchInput<B>): Promise<StepResult> {
    return this.program.step(toShaped(batch));
  }

  get stepCount(): number {
    return this.program.stepCount;
  }

  async #tree(role: "param" | "optimizer", def: TreeDef): Promise<unknown> {
    const states = this.program.manifest.state.filter((s) => s.role === role);
    const data = await Promise.all(states.map((s) => this.program.executable.readState(s.name)));
    return unflatten(def, states.map((s, i) => fromHostArray(s.dtype, s.shape, data[i]!)));
  }

  /** The current parameters, read back as a tree of HostTensors. */
  params(): Promise<HostOf<TracersOf<P>>> {
    return this.#tree("param", this.#defs[0]!) as Promise<HostOf<TracersOf<P>>>;
  }

  /** The optimizer state (count and moments), read back. */
  optState(): Promise<unknown> {
    return this.#tree("optimizer", this.#defs[1]!);
  }

  /** Replaces the parameters (host tensors); every leaf is checked before any is written. */
  async setParams(tree: unknown): Promise<void> {
    const [leaves] = flatten(tree, (v): v is HostTensor => v instanceof HostTensor);
    const states = this.program.manifest.state.filter((s) => s.role === "param");
    if (leaves.length !== states.length) throw new CompileError(`setParams: expected ${states.length} tensors, found ${leaves.length}`, "trainStep");
    const bad = states.flatMap((s, i) => (leaves[i]!.dtype !== s.dtype || leaves[i]!.shape.join() !== s.shape.join() ? [`${s.key} is ${s.dtype}[${s.shape}], found ${leaves[i]!.dtype}[${leaves[i]!.shape}]`] : []));
    if (bad.length) throw new CompileError(`setParams: ${bad.join("; ")}`, "trainStep");
    for (const [i, s] of states.entries()) await this.program.writeState(s.key, toShaped(leaves[i]) as ShapedArray);
  }

  readState(key?: string): Promise<unknown> {
    return this.program.readState(key);
  }
  writeState(key: string, value: ShapedArray): Promise<void> {
    return this.program.writeState(key, value);
  }
  /** Parameters, optimizer state, step and key, written atomically (runtime's saveCheckpoint). */
  save(path: string, options?: SaveOptions): Promise<void> {
    return this.program.save(path, options);
  }
  /** Restores a checkpoint (a file or its contents); all of it is checked before anything is written. */
  restore(source: CheckpointSource, options?: RestoreCompiledOptions): Promise<void> {
    return this.program.restore(source, options);
  }
  /** The adapters in PEFT's layout (adapter_model.safetensors + adapter_config.json). */
  exportAdapter(dir: string, config?: Partial<PeftLoraConfig>) {
    return this.program.exportAdapter(dir, config);
  }
  importAdapter(dir: string): Promise<void> {
    return this.program.importAdapter(dir);
  }

  /** The parameters with every adapter merged into its layer, as Hugging Face safetensors. */
  async exportMerged(path: string, options: { adapter?: AdapterConfig; prefix?: string } = {}): Promise<Record<string, string>> {
    const cfg = options.adapter ?? this.#adapter;
    if (!cfg) throw new CompileError("exportMerged needs the adapter options (rank, alpha): pass { adapter } here or to trainStep", "trainStep");
    return writeMergedModel(path, await this.params(), cfg, options.prefix !== undefined ? { prefix: options.prefix } : {});
  }

  explain(): string {
    return explainLowered(this.lowered);
  }

  dispose(): void {
    this.program.dispose();
  }
}

/** Compiles and loads a training step (see the top of this file). */
export async function trainStep<P, B>(loss: TypedLoss<P, B>, optimizer: Optimizer, options: TrainStepOptions<P, B>): Promise<TrainStep<P, B>> {
  const device = options.device ?? (await defaultDevice());
  const prepared = prepareTrain("trainStep", loss as TypedLoss<never, never>, optimizer, options, targetOf(device));
  if (!prepared.initial) throw new CompileError("trainStep needs the parameters' initial values (host tensors); specs alone are for dorafuse compile", "trainStep");
  const program = await loadCompiled(device, prepared.manifest);
  await program.restore({ ...prepared.initial, path: "the initial parameters" });
  return new TrainStep<P, B>(prepared, program, options.adapter);
}
