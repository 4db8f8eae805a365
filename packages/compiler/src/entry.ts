// How a module names a function for the command line (`dorafuse explain file.ts --entry
// name`): an export built with `defineEntry(fn, specs, options)`, or any plain object with
// `fn` and `specs`. The specs give the shapes the entry is traced at.
import type { CompileOptions } from "./compile.js";
import { CompileError } from "./errors.js";

export interface Entry {
  readonly kind: "dorafuse.entry";
  readonly fn: (...args: never[]) => unknown;
  /** One spec tree (or host-tensor tree) per argument. */
  readonly specs: readonly unknown[];
  readonly options?: Omit<CompileOptions, "device">;
}

export function defineEntry(fn: (...args: never[]) => unknown, specs: readonly unknown[], options: Omit<CompileOptions, "device"> = {}): Entry {
  return { kind: "dorafuse.entry", fn, specs, options };
}

/** The entry `name` of a loaded module, checked. */
export function entryOf(module: Record<string, unknown>, name: string, file: string): Entry {
  const v = module[name];
  const exported = Object.keys(module).filter((k) => isEntryLike(module[k]));
  if (v === undefined) {
    throw new CompileError(`${file} has no export "${name}"; its entries are [${exported.join(", ") || "none"}] (export defineEntry(fn, specs) or { fn, specs })`, file);
  }
  if (!isEntryLike(v)) throw new CompileError(`export "${name}" of ${file} is not an entry: expected defineEntry(fn, specs) or an object with fn and specs, found ${typeof v}`, file);
  return { kind: "dorafuse.entry", fn: v.fn, specs: v.specs, ...(v.options ? { options: v.options } : {}) };
}

function isEntryLike(v: unknown): v is { fn: Entry["fn"]; specs: unknown[]; options?: Entry["options"] } {
  return typeof v === "object" && v !== null && typeof (v as { fn?: unknown }).fn === "function" && Array.isArray((v as { specs?: unknown }).specs);
}
