// How a kernel reaches the tensors it reads and writes: each materialized tensor lives in a
// binding, at an element offset inside it. Usually a tensor has a binding of its own; when a
// kernel needs more bindings than the adapter allows, several tensors of one buffer share a
// u32 binding and are addressed by offset (plan/bindings.ts decides which). A tensor larger
// than one binding may hold (maxStorageBufferBindingSize) is bound in slices; reads select
// the slice holding the element, writes branch to it.
import type { DType, Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { add, lit, max, min, sub, type Ix } from "../wgsl/ix.js";
import { fromStorage, fromWord, toStorage, toWord } from "../wgsl/types.js";

export interface TensorSlot {
  /** WGSL name of the binding. */
  binding: string;
  /** Offset of the tensor's first element inside the binding, in elements of the binding. */
  base: number;
  /** The binding is a shared array<u32> holding several tensors (values are bitcast). */
  packed: boolean;
  dtype: DType;
  /** A tensor bound in slices: each binding holds elements [start, start + count). */
  slices?: { binding: string; start: number; count: number }[];
}

export class KernelIO {
  constructor(private readonly slots: ReadonlyMap<Node, TensorSlot>) {}

  has(node: Node): boolean {
    return this.slots.has(node);
  }

  private slot(node: Node): TensorSlot {
    const s = this.slots.get(node);
    if (!s) throw new CompileError(`kernel reads %${node.id} (${node.op}) but no binding holds it`, "kernels/io");
    return s;
  }

  /** The value of `node` at flat element `flat`, as a value of its dtype. */
  load(node: Node, flat: Ix): string {
    const s = this.slot(node);
    if (s.slices) return this.loadSliced(s, flat);
    const at = `${s.binding}[${add(lit(s.base), flat)}]`;
    return s.packed ? fromWord(s.dtype, at) : fromStorage(s.dtype, at);
  }

  private loadSliced(s: TensorSlot, flat: Ix): string {
    return sliceLoads(s, flat);
  }

  /** A statement storing `value` (of the node's dtype) at flat element `flat`. */
  store(node: Node, flat: Ix, value: string): string {
    const s = this.slot(node);
    if (s.slices) {
      const branches = s.slices.map((sl, k) => {
        const body = `${sl.binding}[${sub(flat, lit(sl.start))}] = ${toStorage(s.dtype, value)};`;
        if (k === s.slices!.length - 1) return `{ ${body} }`;
        return `if (${flat} < ${lit(sl.start + sl.count)}) { ${body} }`;
      });
      return branches.join(" else ");
    }
    const at = `${s.binding}[${add(lit(s.base), flat)}]`;
    return `${at} = ${s.packed ? toWord(s.dtype, value) : toStorage(s.dtype, value)};`;
  }
}

/** Reads of every slice at a clamped index, the one holding `flat` selected. */
function sliceLoads(s: TensorSlot, flat: Ix): string {
  const slices = s.slices!;
  const read = (k: number) => {
    const sl = slices[k]!;
    const idx = min(sub(max(flat, lit(sl.start)), lit(sl.start)), lit(sl.count - 1));
    return fromStorage(s.dtype, `${sl.binding}[${idx}]`);
  };
  let expr = read(slices.length - 1);
  for (let k = slices.length - 2; k >= 0; k--) expr = `select(${expr}, ${read(k)}, ${flat} < ${lit(slices[k]!.start + slices[k]!.count)})`;
  return expr;
}
