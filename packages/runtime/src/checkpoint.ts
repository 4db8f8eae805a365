// Training checkpoints: one safetensors file holding every named tensor (parameters and
// optimizer state, bytes as they are, so NaN payloads and -0 survive), with the step and the
// random key in `__metadata__` as decimal text (exact for any safe integer and any u32 word,
// and outside the tensor names, so the names are the caller's alone).
//
// Saving goes through writeSafetensors: a temporary file in the same folder, fsync'd, renamed
// into place, the folder fsync'd. A crash before the rename leaves the last good checkpoint
// as it was; the leftover temporary is never read and is removed by the next save.
//
// Loading checks every tensor against an optional spec and reports every problem at once
// (missing, extra, shape, dtype) before returning anything; restoreState checks a checkpoint
// against an Executable's state the same way before it writes a single byte to the GPU.

import { CheckpointError } from "./errors.js";
import type { Executable } from "./executable.js";
import type { PlanDType } from "./plan.js";
import { readSafetensors, SAFETENSORS_DTYPES, writeSafetensors, type HostTensor, type SafetensorsDType, type TensorsIn, type WriteOptions } from "./safetensors.js";

/** What a checkpoint holds. */
export interface CheckpointContents {
  /** Flat names → host tensors: parameters, optimizer state, anything else to resume. */
  tensors: TensorsIn;
  /** The number of completed training steps (a non-negative safe integer). */
  step: number;
  /** The random key to resume with, as u32 words (dorafuse keys are two). */
  rngKey?: Uint32Array | readonly number[];
  /** Free-form strings; keys starting with "dorafuse." are reserved. */
  metadata?: Record<string, string>;
}

export interface Checkpoint {
  path: string;
  tensors: Record<string, HostTensor>;
  step: number;
  rngKey?: Uint32Array;
  /** The caller's metadata, without the reserved "dorafuse." keys. */
  metadata: Record<string, string>;
}

/** What a tensor must be: its shape, and its dtype as the file names it ("F32") or as a plan does ("f32"). */
export interface TensorSpec {
  shape: readonly number[];
  dtype: SafetensorsDType | PlanDType;
}

export interface LoadCheckpointOptions {
  /** When given, the checkpoint must hold exactly these tensors, with these shapes and dtypes. */
  expect?: Record<string, TensorSpec>;
}

export interface RestoreOptions {
  /** Ignore checkpoint tensors that are not state of the plan (default: they are an error). */
  allowExtra?: boolean;
}

const KEYS = { format: "dorafuse.checkpoint", step: "dorafuse.step", rngKey: "dorafuse.rng_key" } as const;
const FORMAT_VERSION = "1";
const RESERVED_PREFIX = "dorafuse.";

/** The file dtype of a plan dtype (the inverse of the table's `gpu` column), or the file dtype itself. */
export function fileDType(dtype: SafetensorsDType | PlanDType): SafetensorsDType | undefined {
  if (Object.hasOwn(SAFETENSORS_DTYPES, dtype)) return dtype as SafetensorsDType;
  const found = Object.entries(SAFETENSORS_DTYPES).find(([, spec]) => (spec as { gpu?: PlanDType }).gpu === dtype);
  return found?.[0] as SafetensorsDType | undefined;
}

const describe = (dtype: string, shape: readonly number[]): string => `${dtype}[${shape.join(",")}]`;
const entriesOf = (tensors: TensorsIn): [string, HostTensor][] => (tensors instanceof Map ? [...tensors] : Object.entries(tensors));

function encodeStep(step: number, path: string): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`${path}: step must be a non-negative safe integer, found ${step}`);
  return String(step);
}

function encodeKey(key: Uint32Array | readonly number[], path: string): string {
  const words = Array.from(key);
  if (words.length === 0 || !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    throw new CheckpointError(`${path}: rngKey must be one or more u32 words, found [${words.join(", ")}]`);
  }
  return JSON.stringify(words);
}

/**
 * Writes a checkpoint atomically (see the top of this file). Everything is checked before
 * anything is written. `options.beforeRename` runs between the complete temporary file and
 * the rename (for simulating a crash there).
 */
export async function saveCheckpoint(path: string, contents: CheckpointContents, options: WriteOptions = {}): Promise<void> {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(contents.metadata ?? {})) {
    if (key.startsWith(RESERVED_PREFIX)) throw new CheckpointError(`${path}: metadata key "${key}" is reserved (keys starting with "${RESERVED_PREFIX}" belong to dorafuse)`);
    metadata[key] = value;
  }
  metadata[KEYS.format] = FORMAT_VERSION;
  metadata[KEYS.step] = encodeStep(contents.step, path);
  if (contents.rngKey !== undefined) metadata[KEYS.rngKey] = encodeKey(contents.rngKey, path);
  await writeSafetensors(path, contents.tensors, metadata, options);
}

function decodeStep(text: string | undefined, path: string): number {
  const step = text !== undefined && /^(0|[1-9]\d*)$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(step)) throw new CheckpointError(`${path}: __metadata__ "${KEYS.step}" must be a non-negative integer, found ${JSON.stringify(text)}`);
  return step;
}

function decodeKey(text: string, path: string): Uint32Array {
  let words: unknown;
  try {
    words = JSON.parse(text);
  } catch {
    words = undefined;
  }
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    throw new CheckpointError(`${path}: __metadata__ "${KEYS.rngKey}" must be a JSON list of u32 words, found ${JSON.stringify(text)}`);
  }
  return Uint32Array.from(words as number[]);
}

/**
 * Reads a checkpoint written by saveCheckpoint. With `expect`, the tensors must match it
 * exactly; every difference is listed in one CheckpointError and nothing is returned.
 */
export async function loadCheckpoint(path: string, options: LoadCheckpointOptions = {}): Promise<Checkpoint> {
  const file = await readSafetensors(path);
  const meta = file.metadata;
  if (meta[KEYS.format] === undefined) {
    throw new CheckpointError(`${path}: not a dorafuse checkpoint: its __metadata__ has no "${KEYS.format}" (keys: [${Object.keys(meta).join(", ")}]); read plain safetensors with readSafetensors`);
  }
  if (meta[KEYS.format] !== FORMAT_VERSION) throw new CheckpointError(`${path}: checkpoint format version ${JSON.stringify(meta[KEYS.format])}, this runtime reads version ${FORMAT_VERSION}`);
  const tensors = Object.fromEntries(file.tensors);
  if (options.expect) checkTensors(path, tensors, options.expect);
  const step = decodeStep(meta[KEYS.step], path);
  const rngKey = meta[KEYS.rngKey] === undefined ? undefined : decodeKey(meta[KEYS.rngKey], path);
  const metadata = Object.fromEntries(Object.entries(meta).filter(([key]) => !key.startsWith(RESERVED_PREFIX)));
  return { path, tensors, step, ...(rngKey ? { rngKey } : {}), metadata };
}

/**
 * Throws one CheckpointError listing every tensor that is missing, not expected, or of the
 * wrong shape or dtype; `source` (a file, or what is being restored) starts the message.
 */
export function checkTensors(source: string, tensors: TensorsIn, expect: Record<string, TensorSpec>, options: { allowExtra?: boolean } = {}): void {
  const found = new Map(entriesOf(tensors));
  const problems: [string, string][] = [];
  for (const [name, spec] of Object.entries(expect)) {
    const want = fileDType(spec.dtype);
    if (want === undefined) throw new CheckpointError(`${source}: the expected dtype of "${name}" is ${JSON.stringify(spec.dtype)}, which is neither a safetensors nor a plan dtype`);
    const expected = describe(want, spec.shape);
    const t = found.get(name);
    if (!t) {
      problems.push([name, `missing, expected ${expected}`]);
      continue;
    }
    const shapeDiffers = t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]);
    const dtypeDiffers = t.dtype !== want;
    if (shapeDiffers || dtypeDiffers) {
      const what = shapeDiffers && dtypeDiffers ? "dtype and shape" : shapeDiffers ? "shape" : "dtype";
      problems.push([name, `expected ${expected}, found ${describe(t.dtype, t.shape)} (wrong ${what})`]);
    }
  }
  if (!options.allowExtra) {
    for (const [name, t] of found) if (!Object.hasOwn(expect, name)) problems.push([name, `not expected, found ${describe(t.dtype, t.shape)}`]);
  }
  if (problems.length === 0) return;
  problems.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = problems.map(([name, text]) => `  "${name}": ${text}`);
  throw new CheckpointError(`${source}: the tensors do not match what was expected (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`);
}

/** The spec of an Executable's state tensors, for `loadCheckpoint(path, { expect })`. */
export function stateSpec(executable: Executable): Record<string, TensorSpec> {
  return Object.fromEntries((executable.plan.state ?? []).map((t) => [t.name, { shape: t.shape, dtype: fileDType(t.dtype)! }]));
}

/** Reads every state tensor of an Executable back to the host, named as the plan names them. */
export async function captureState(executable: Executable): Promise<Record<string, HostTensor>> {
  const state = executable.plan.state ?? [];
  const read = await Promise.all(state.map((t) => executable.readState(t.name)));
  return Object.fromEntries(state.map((t, i) => [t.name, { dtype: fileDType(t.dtype)!, shape: [...t.shape], data: read[i]! }]));
}

/**
 * Writes a checkpoint's tensors into an Executable's state. Every state tensor must be there
 * with its shape and dtype (and, unless `allowExtra`, nothing else): all of it is checked
 * first, and only then is anything written to the GPU.
 */
export async function restoreState(executable: Executable, checkpoint: { tensors: TensorsIn; path?: string }, options: RestoreOptions = {}): Promise<void> {
  const source = `restoring the plan's state from ${checkpoint.path ?? "a checkpoint"}`;
  checkTensors(source, checkpoint.tensors, stateSpec(executable), options);
  const tensors = new Map(entriesOf(checkpoint.tensors));
  for (const t of executable.plan.state ?? []) await executable.writeState(t.name, tensors.get(t.name)!.data as Parameters<Executable["writeState"]>[1]);
}
