// How a module declares what `dorafuse compile` compiles: exports made with
//   defineTrainStep(loss, optimizer, { params, batch, trainable, accumulate, … })  — a training step
//   defineEvalStep(loss, { params, batch })                                         — an evaluation step
//   defineEntry(fn, specs, options)                                                  — any function (a forward pass)
// The options are trainStep's and evalStep's, without the device: the shapes come from the
// params (host tensors or specs) and the batch specs, so the entry is traced at exactly those.
import type { Optimizer } from "@dorafuse/core";
import { entryOf, type Entry } from "../entry.js";
import { CompileError } from "../errors.js";
import type { EvalStepOptions } from "../train/eval-step.js";
import type { TrainStepOptions, TypedLoss } from "../train/train-step.js";

// `any` by default so an entry over concrete trees is a TrainEntry (the loss's parameters are contravariant).
export interface TrainEntry<P = any, B = any> {
  readonly kind: "dorafuse.train";
  readonly loss: TypedLoss<P, B>;
  readonly optimizer: Optimizer;
  readonly options: Omit<TrainStepOptions<P, B>, "device">;
}

export interface EvalEntry<P = any, B = any> {
  readonly kind: "dorafuse.eval";
  readonly loss: TypedLoss<P, B>;
  readonly options: Omit<EvalStepOptions<P, B>, "device" | "params"> & { readonly params: P };
}

export type AotEntry = Entry | TrainEntry | EvalEntry;

export function defineTrainStep<P, B>(loss: TypedLoss<P, B>, optimizer: Optimizer, options: Omit<TrainStepOptions<P, B>, "device">): TrainEntry<P, B> {
  return { kind: "dorafuse.train", loss, optimizer, options };
}

export function defineEvalStep<P, B>(loss: TypedLoss<P, B>, options: EvalEntry<P, B>["options"]): EvalEntry<P, B> {
  return { kind: "dorafuse.eval", loss, options };
}

const kindOf = (v: unknown): string | undefined => (typeof v === "object" && v !== null ? (v as { kind?: unknown }).kind : undefined) as string | undefined;
const isStep = (v: unknown): v is TrainEntry | EvalEntry => kindOf(v) === "dorafuse.train" || kindOf(v) === "dorafuse.eval";
const isFunctionEntry = (v: unknown): boolean => typeof v === "object" && v !== null && typeof (v as { fn?: unknown }).fn === "function" && Array.isArray((v as { specs?: unknown }).specs);

/** The entry `name` of a loaded module: a training or evaluation step, or a function entry. */
export function aotEntryOf(module: Record<string, unknown>, name: string, file: string): AotEntry {
  const v = module[name];
  if (isStep(v)) return v;
  if (v === undefined) {
    const entries = Object.keys(module).filter((k) => isStep(module[k]) || isFunctionEntry(module[k]));
    throw new CompileError(`${file} has no export "${name}"; its entries are [${entries.join(", ") || "none"}] (export defineTrainStep(…), defineEvalStep(…) or defineEntry(fn, specs))`, file);
  }
  return entryOf(module, name, file);
}
