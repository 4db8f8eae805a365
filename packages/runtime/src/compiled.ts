// Compiled programs: an ExecutionPlan with the interface that makes it callable — arguments
// and results as trees of named, shaped tensors, state with checkpoint names, and for a
// training step its step counter, random key and loss/metrics readback. `dorafuse compile`
// writes a manifest.json (manifest.ts) beside the WGSL files and a typed module that calls
// `loadCompiled`; the compiler's in-process trainStep/evalStep run through the same class,
// so a program behaves the same whichever way it was compiled.

import { join } from "node:path";
import { captureState, checkTensors, fileDType, loadCheckpoint, saveCheckpoint, type Checkpoint } from "./checkpoint.js";
import type { Device } from "./device.js";
import { elementCount, isHostArrayOf, PLAN_DTYPES, type HostArray, type HostArrayOf } from "./dtypes.js";
import { CheckpointError, PlanError } from "./errors.js";
import { loadPlan, type Executable } from "./executable.js";
import { exportPeftAdapter, importPeftAdapter } from "./peft.js";
import type { PeftLoraConfig } from "./peft-config.js";
import type { ExecutionPlan, PlanDType } from "./plan.js";
import type { HostTensor as FileTensor, WriteOptions } from "./safetensors.js";
import { Tensor } from "./tensor.js";
import { checkAdapter, readManifest, type CompiledManifest, type ManifestState, type ManifestTensor } from "./manifest.js";

/** Host data with its shape in the type: `shaped([4, 16], new Int32Array(64))`. */
export interface ShapedArray<S extends readonly number[] = readonly number[], D extends PlanDType = PlanDType> {
  readonly shape: S;
  readonly data: HostArrayOf[D];
}

/** A GPU tensor whose shape is known to the types. */
export type ShapedTensor<S extends readonly number[] = readonly number[], D extends PlanDType = PlanDType> = Tensor<D> & { readonly shape: S };

/** What a compiled function takes for one tensor: host data with its shape, or a GPU tensor (checked when called). */
export type Arg<S extends readonly number[], D extends PlanDType> = ShapedArray<S, D> | Tensor<D>;

type DTypeOfArray<A> = A extends Float32Array ? "f32" : A extends Int32Array ? "i32" : A extends Uint32Array ? "u32" : A extends Uint16Array ? "f16" : A extends Uint8Array ? "bool" : PlanDType;

export function shaped<const S extends readonly number[], A extends HostArray>(shape: S, data: A): ShapedArray<S, DTypeOfArray<A>> {
  return { shape, data: data as unknown as HostArrayOf[DTypeOfArray<A>] };
}

export interface LoadCompiledOptions {
  /** false: skip the manifest's initial checkpoint; a path: restore that checkpoint instead. */
  initial?: boolean | string;
}

export interface StepResult<M extends string = string> {
  /** Steps completed, this one included. */
  readonly step: number;
  /** Resolve when the GPU has finished this step (awaiting them every step serializes CPU and GPU). */
  readonly loss: Promise<number>;
  readonly metrics: Promise<Record<M, number>>;
}

export type EvalResult<M extends string = string> = Omit<StepResult<M>, "step">;

export type SaveOptions = WriteOptions & {
  metadata?: Record<string, string>;
  /** State keys left out of the file (frozen weights a fine-tuning checkpoint need not repeat); restore them with the same `skip`. */
  skip?: (key: string) => boolean;
};

export interface RestoreCompiledOptions {
  /** Ignore checkpoint tensors this program has no state for (an eval step restoring a training checkpoint). */
  allowExtra?: boolean;
  /** State keys the checkpoint does not hold (saved with the same `skip`): left as they are. */
  skip?: (key: string) => boolean;
}

/** A checkpoint file, or its contents (tensors by checkpoint name, step, key). */
export type CheckpointSource = string | { tensors: Record<string, FileTensor>; step: number; rngKey?: Uint32Array | readonly number[]; path?: string };

/** The typed face of a compiled training step (generated modules and trainStep use it). */
export interface CompiledTrainStep<B = unknown, S = Record<string, ShapedArray>, M extends string = string> {
  step(batch: B): Promise<StepResult<M>>;
  readonly stepCount: number;
  readState(): Promise<S>;
  readState<K extends keyof S & string>(key: K): Promise<S[K]>;
  writeState<K extends keyof S & string>(key: K, value: S[K] | Tensor): Promise<void>;
  save(path: string, options?: SaveOptions): Promise<void>;
  restore(source: CheckpointSource, options?: RestoreCompiledOptions): Promise<void>;
  exportAdapter(dir: string, config?: Partial<PeftLoraConfig>): Promise<{ config: PeftLoraConfig; keys: Record<string, string> }>;
  importAdapter(dir: string): Promise<void>;
  readonly program: CompiledProgram;
  dispose(): void;
}

export type CompiledEvalStep<B = unknown, S = Record<string, ShapedArray>, M extends string = string> = Pick<
  CompiledTrainStep<B, S, M>,
  "readState" | "writeState" | "restore" | "program" | "dispose"
> & { evaluate(batch: B): Promise<EvalResult<M>> };

const describe = (dtype: string, shape: readonly number[]) => `${dtype}[${shape.join(",")}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

const dtypeOfArray = (data: unknown): PlanDType | undefined => (ArrayBuffer.isView(data) ? PLAN_DTYPES.find((d) => isHostArrayOf(d, data)) : undefined);

/** Checks the adapter, loads the plan and restores the initial checkpoint (if the manifest names one). */
export async function loadCompiled(device: Device, source: CompiledManifest | string | URL, options: LoadCompiledOptions = {}): Promise<CompiledProgram> {
  const fromFile = typeof source === "string" || source instanceof URL;
  const { manifest, dir } = fromFile ? await readManifest(source) : { manifest: source, dir: undefined };
  checkAdapter(manifest, device);
  const program = new CompiledProgram(manifest, await loadPlan(device, manifest.plan));
  const initial = typeof options.initial === "string" ? options.initial : options.initial !== false && manifest.initial && dir ? join(dir, manifest.initial) : undefined;
  if (initial) await program.restore(initial);
  return program;
}

function at(root: unknown, path: readonly (string | number)[]): unknown {
  let cur = root;
  for (const k of path) cur = cur === null || typeof cur !== "object" ? undefined : (cur as Record<string | number, unknown>)[k];
  return cur;
}

/** Rebuilds a tree from (path, value) pairs. */
function build(entries: readonly [readonly (string | number)[], unknown][]): unknown {
  if (entries.length === 1 && entries[0]![0].length === 0) return entries[0]![1];
  const container = (k: string | number | undefined) => (typeof k === "number" ? [] : {});
  const root = container(entries[0]?.[0][0]) as Record<string | number, unknown>;
  for (const [path, value] of entries) {
    let cur = root;
    path.forEach((k, i) => {
      if (i === path.length - 1) cur[k] = value;
      else cur = (cur[k] ??= container(path[i + 1])) as Record<string | number, unknown>;
    });
  }
  return root;
}

/** The argument as the plan takes it, or a PlanError naming it. */
function checkArg(entry: string, t: ManifestTensor, v: unknown): HostArray | Tensor {
  const want = describe(t.dtype, t.shape);
  const where = `${entry}: argument "${t.label}"`;
  if (v instanceof Tensor) {
    if (v.dtype !== t.dtype || !sameShape(v.shape, t.shape)) throw new PlanError(`${where} must be ${want}, found a GPU tensor ${v.describe()}`);
    return v;
  }
  if (ArrayBuffer.isView(v)) throw new PlanError(`${where} must be ${want}: give { shape, data } or a GPU tensor, found a ${v.constructor.name} without a shape`);
  const s = v as Partial<ShapedArray> | undefined;
  if (s === undefined || s === null || !Array.isArray(s.shape) || !ArrayBuffer.isView(s.data)) {
    throw new PlanError(`${where} must be ${want} ({ shape, data } or a GPU tensor), found ${v === undefined ? "nothing" : typeof v}`);
  }
  const dtype = dtypeOfArray(s.data);
  if (!isHostArrayOf(t.dtype, s.data) || !sameShape(s.shape, t.shape)) throw new PlanError(`${where} must be ${want}, found ${describe(dtype ?? s.data.constructor.name, s.shape)}`);
  const length = (s.data as unknown as ArrayLike<number>).length;
  if (length !== elementCount(t.shape)) throw new PlanError(`${where} is ${want} (${elementCount(t.shape)} elements), its data holds ${length}`);
  return s.data as HostArray;
}

export class CompiledProgram {
  #step = 0;
  #version = 0;

  constructor(
    readonly manifest: CompiledManifest,
    readonly executable: Executable,
  ) {}

  get device(): Device {
    return this.executable.device;
  }
  /** Itself: the generated modules' typed faces are views of this object. */
  get program(): CompiledProgram {
    return this;
  }
  /** Training steps completed (restored from checkpoints). */
  get stepCount(): number {
    return this.#step;
  }
  /** Changes whenever the state may have changed (a run, a write, a restore). */
  get version(): number {
    return this.#version;
  }

  /** Runs on the arguments (trees as the manifest lays them out); the results stay on the GPU. */
  async call(args: readonly unknown[]): Promise<unknown> {
    const inputs: Record<string, HostArray | Tensor> = {};
    for (const t of this.manifest.args) inputs[t.name] = checkArg(this.manifest.entry, t, at(args, t.path));
    const result = await this.executable.run(inputs);
    if (this.manifest.state.length) this.#version++;
    return build(this.manifest.results.map((r) => [r.path, result.outputs[r.name]!]));
  }

  /** Runs and reads every result back as ShapedArrays. */
  async read(args: readonly unknown[]): Promise<unknown> {
    const out = await this.call(args);
    const leaves = this.manifest.results.map((r) => at(out, r.path) as Tensor);
    const data = await Promise.all(leaves.map(async (t) => ({ shape: [...t.shape], data: await t.read() })));
    leaves.forEach((t) => t.dispose());
    return build(this.manifest.results.map((r, i) => [r.path, data[i]!]));
  }

  #expect(kind: CompiledManifest["kind"], what: string): void {
    if (this.manifest.kind !== kind || !this.manifest.stats) throw new PlanError(`${this.manifest.entry}: ${what}() needs a compiled ${kind} step, this is a ${this.manifest.kind}`);
  }

  async #statsOf(batch: unknown): Promise<{ loss: Promise<number>; metrics: Promise<Record<string, number>> }> {
    const stats = this.manifest.stats!;
    const out = (await this.call([batch])) as Record<string, Tensor>;
    const tensor = at(out, this.manifest.results.find((r) => r.name === stats.output)!.path) as Tensor;
    const values = tensor.read().finally(() => tensor.dispose()) as Promise<Float32Array>;
    const loss = values.then((v) => v[0]!);
    const metrics = values.then((v) => Object.fromEntries(stats.names.map((n, i) => [n, v[i + 1]!])));
    // Callers may ignore one of the two; a failed read still reaches whoever awaits it.
    loss.catch(() => {});
    metrics.catch(() => {});
    return { loss, metrics };
  }

  /** One training step on `batch`: queued on the GPU; the loss and metrics resolve when it finishes. */
  async step(batch: unknown): Promise<StepResult> {
    this.#expect("train", "step");
    const stats = await this.#statsOf(batch);
    return { step: ++this.#step, ...stats };
  }

  /** The loss and metrics on `batch`, with the current parameters. */
  async evaluate(batch: unknown): Promise<EvalResult> {
    this.#expect("eval", "evaluate");
    return this.#statsOf(batch);
  }

  stateKeys(): string[] {
    return this.manifest.state.map((s) => s.key);
  }

  #state(key: string) {
    const s = this.manifest.state.find((x) => x.key === key);
    if (!s) throw new PlanError(`${this.manifest.entry}: no state "${key}"; its state is [${this.stateKeys().join(", ")}]`);
    return s;
  }

  /** A view of a state tensor in the program's own buffer (valid until the next run changes it). */
  stateTensor(key: string): Tensor {
    return this.executable.state(this.#state(key).name);
  }

  /** One state tensor, or all of them by key, read back to the host. */
  async readState(key?: string): Promise<unknown> {
    const read = async (s: ManifestState): Promise<ShapedArray> => ({ shape: [...s.shape], data: await this.executable.readState(s.name) });
    if (key !== undefined) return read(this.#state(key));
    const all = await Promise.all(this.manifest.state.map(read));
    return Object.fromEntries(this.manifest.state.map((s, i) => [s.key, all[i]!]));
  }

  async writeState(key: string, value: ShapedArray | Tensor): Promise<void> {
    const s = this.#state(key);
    const data = checkArg(this.manifest.entry, { ...s, label: `state ${key}`, path: [] }, value);
    await this.executable.writeState(s.name, data);
    if (s.role === "step") this.#step = (await this.executable.readState(s.name))[0]!;
    this.#version++;
  }

  /** Copies (on the GPU) every state tensor `other` has under the same key. */
  async copyStateFrom(other: CompiledProgram): Promise<void> {
    const theirs = new Set(other.stateKeys());
    for (const s of this.manifest.state) if (theirs.has(s.key)) await this.executable.writeState(s.name, other.stateTensor(s.key));
    this.#version++;
  }

  /** Writes every state tensor, the step and the random key to a checkpoint (atomically). */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    const captured = await captureState(this.executable);
    const tensors: Record<string, FileTensor> = {};
    let step = this.#step;
    let rngKey: Uint32Array | undefined;
    const { metadata, skip, ...write } = options;
    for (const s of this.manifest.state) {
      const t = captured[s.name]!;
      if (s.role === "step") step = (t.data as Int32Array)[0]!;
      else if (s.role === "key") rngKey = t.data as Uint32Array;
      else if (!skip?.(s.key)) tensors[s.key] = t;
    }
    await saveCheckpoint(path, { tensors, step, ...(rngKey ? { rngKey } : {}), ...(metadata ? { metadata } : {}) }, write);
  }

  /** Restores from a checkpoint file or contents; everything is checked before anything is written. */
  async restore(source: CheckpointSource, options: RestoreCompiledOptions = {}): Promise<void> {
    const ckpt: Pick<Checkpoint, "tensors" | "step" | "path"> & { rngKey?: Uint32Array | readonly number[] } =
      typeof source === "string" ? await loadCheckpoint(source) : { path: source.path ?? "the checkpoint given", ...source };
    const saved = this.manifest.state.filter((s) => s.role !== "step" && s.role !== "key" && !options.skip?.(s.key));
    checkTensors(ckpt.path, ckpt.tensors, Object.fromEntries(saved.map((s) => [s.key, { shape: s.shape, dtype: s.dtype }])), { allowExtra: options.allowExtra ?? false });
    const key = this.manifest.state.find((s) => s.role === "key");
    if (key && ckpt.rngKey?.length !== elementCount(key.shape)) {
      throw new CheckpointError(`${ckpt.path}: expected a random key of ${elementCount(key.shape)} u32 words, found ${ckpt.rngKey ? `${ckpt.rngKey.length}` : "none"}`);
    }
    const hasStep = this.manifest.state.some((s) => s.role === "step");
    if (hasStep && !(Number.isSafeInteger(ckpt.step) && ckpt.step >= 0 && ckpt.step < 2 ** 31)) throw new CheckpointError(`${ckpt.path}: step ${ckpt.step} does not fit the step counter (i32)`);
    for (const s of this.manifest.state) {
      if (s.role !== "step" && s.role !== "key" && options.skip?.(s.key)) continue;
      const data = s.role === "step" ? Int32Array.of(ckpt.step) : s.role === "key" ? Uint32Array.from(ckpt.rngKey!) : (ckpt.tensors[s.key]!.data as HostArray);
      await this.executable.writeState(s.name, data);
    }
    if (hasStep) this.#step = ckpt.step;
    this.#version++;
  }

  #adapterLeaves(): { key: string; name: string; state: ManifestState }[] {
    const a = this.manifest.adapter;
    const byKey = new Map(this.manifest.state.map((s) => [s.key, s]));
    const leaves = (a?.layers ?? []).flatMap((layer) =>
      ["loraA", "loraB", "m"].flatMap((leaf) => {
        const state = byKey.get(`${a!.prefix}${layer}.${leaf}`);
        return state ? [{ key: state.key, name: `${layer}.${leaf}`, state }] : [];
      }),
    );
    if (leaves.length === 0) throw new CheckpointError(`${this.manifest.entry}: has no LoRA/DoRA adapter parameters to export or import`);
    return leaves;
  }

  /** Writes the adapters as PEFT does (adapter_model.safetensors + adapter_config.json). */
  async exportAdapter(dir: string, config: Partial<PeftLoraConfig> = {}): Promise<{ config: PeftLoraConfig; keys: Record<string, string> }> {
    const merged = { ...this.manifest.adapter?.config, ...config };
    if (merged.lora_alpha === undefined) throw new CheckpointError(`${this.manifest.entry}: exporting a PEFT adapter needs lora_alpha; pass { lora_alpha } or compile with the adapter's config`);
    const tensors: Record<string, FileTensor> = {};
    for (const l of this.#adapterLeaves()) tensors[l.name] = { dtype: fileDType(l.state.dtype)!, shape: [...l.state.shape], data: await this.executable.readState(l.state.name) };
    return exportPeftAdapter(dir, { tensors, config: { ...merged, lora_alpha: merged.lora_alpha }, embeddings: this.manifest.adapter?.embeddings ?? [] });
  }

  /** Reads a PEFT adapter folder into the adapter parameters; every tensor is checked before any is written. */
  async importAdapter(dir: string): Promise<void> {
    const adapter = await importPeftAdapter(dir);
    const leaves = this.#adapterLeaves();
    const expect = Object.fromEntries(leaves.map((l) => [l.name, { shape: l.state.shape, dtype: l.state.dtype }]));
    checkTensors(`importing the PEFT adapter in ${dir}`, adapter.tensors, expect);
    for (const l of leaves) await this.executable.writeState(l.state.name, adapter.tensors[l.name]!.data as HostArray);
    this.#version++;
  }

  dispose(): void {
    this.executable.dispose();
  }
}
