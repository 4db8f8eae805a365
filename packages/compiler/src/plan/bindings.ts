// Which bindings a kernel gets. Each tensor it reads or writes is normally one binding over
// the tensor's own range (an input and the output written over it in place share one). When
// that is more storage bindings than the adapter allows, the tensors of one buffer are bound
// together as a single u32 range and addressed by offset ("packing"), buffer by buffer, until
// the kernel fits — rather than splitting the kernel.
//
// Access: a buffer that some kernel writes is bound read_write in every dispatch that uses it.
// WebGPU's usage rules are per whole buffer: read-only storage next to writable storage of
// the same buffer in one dispatch is a conflict, while writable storage bindings may share a
// buffer as long as their ranges do not overlap. Graph inputs are never written, so their
// buffer is bound read-only.
import type { Node } from "@dorafuse/core";
import type { BufferRange } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import type { KernelGroup } from "../fusion/group.js";
import type { TensorSlot } from "../kernels/io.js";
import type { KernelLimits } from "../limits.js";
import type { BindingDecl } from "../wgsl/module.js";
import { storageType } from "../wgsl/types.js";

export interface BindingLayout {
  decls: BindingDecl[];
  ranges: BufferRange[];
  slots: Map<Node, TensorSlot>;
  /** Buffers whose tensors share one binding in this kernel. */
  packed: number[];
}

interface Range extends BufferRange {
  tensors: Node[];
  written: boolean;
}

const describe = (n: Node) => `%${n.id} ${n.dtype}[${n.shape}]`;

/**
 * The ranges of one buffer as few packed bindings as the binding size allows: in offset
 * order, each binding spans as many consecutive ranges as fit in `maxBytes` (a big arena
 * holds the tensors of one kernel far apart).
 */
function windowsOf(members: readonly Range[], maxBytes: number): Range[][] {
  const sorted = [...members].sort((a, b) => a.offset - b.offset);
  const out: Range[][] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.offset + r.size - last[0]!.offset <= maxBytes) last.push(r);
    else out.push([r]);
  }
  return out;
}

export function layoutBindings(group: KernelGroup, homes: ReadonlyMap<Node, BufferRange>, writtenBuffers: ReadonlySet<number>, limits: KernelLimits): BindingLayout {
  const ranges: Range[] = [];
  const outputs = new Set(group.outputs);
  for (const t of [...group.inputs, ...group.outputs]) {
    const h = homes.get(t);
    if (!h) throw new CompileError(`kernel k${group.id} uses %${t.id}, which has no place in memory`, "plan/bindings");
    const same = ranges.find((r) => r.buffer === h.buffer && r.offset === h.offset);
    if (same) {
      if (!same.tensors.includes(t)) same.tensors.push(t);
      same.size = Math.max(same.size, h.size);
      same.written ||= outputs.has(t);
    } else ranges.push({ ...h, tensors: [t], written: outputs.has(t) });
  }
  const max = limits.maxStorageBuffersPerShaderStage;
  // a tensor larger than one binding may hold is bound in slices (never packed)
  const sliceBytes = Math.floor(limits.maxStorageBufferBindingSize / limits.minStorageBufferOffsetAlignment) * limits.minStorageBufferOffsetAlignment;
  const sliced = ranges.filter((r) => r.size > limits.maxStorageBufferBindingSize);
  const sliceCount = sliced.reduce((n, r) => n + Math.ceil(r.size / sliceBytes), 0);
  const groups: Range[][] = ranges.filter((r) => !sliced.includes(r)).map((r) => [r]);
  const packed: number[] = [];
  while (groups.length + sliceCount > max) {
    const byBuffer = new Map<number, Range[][]>();
    for (const g of groups) if (g.length === 1) byBuffer.set(g[0]!.buffer, [...(byBuffer.get(g[0]!.buffer) ?? []), g]);
    const candidates = [...byBuffer].filter(([b, gs]) => gs.length > 1 && !packed.includes(b)).sort((x, y) => y[1].length - x[1].length);
    if (candidates.length === 0) {
      throw new CompileError(`kernel k${group.id} needs ${groups.length + sliceCount} storage bindings even with its tensors packed per buffer; the adapter allows ${max}`, "plan/bindings");
    }
    const [buffer, gs] = candidates[0]!;
    const members = gs.map((g) => g[0]!);
    if (members.some((r) => r.tensors.some((t) => t.dtype === "f16"))) {
      throw new CompileError(`kernel k${group.id} would have to pack f16 tensors into a shared u32 binding (${members.flatMap((r) => r.tensors).filter((t) => t.dtype === "f16").map(describe).join(", ")}); raise maxStorageBuffersPerShaderStage`, "plan/bindings");
    }
    for (const g of gs) groups.splice(groups.indexOf(g), 1);
    groups.push(...windowsOf(members, limits.maxStorageBufferBindingSize));
    packed.push(buffer);
  }

  const decls: BindingDecl[] = [];
  const out: BufferRange[] = [];
  const slots = new Map<Node, TensorSlot>();
  groups.forEach((g, i) => {
    const name = `t${i}`;
    const access = writtenBuffers.has(g[0]!.buffer) ? "read_write" : "read";
    if (g.length === 1) {
      const r = g[0]!;
      const dtypes = new Set(r.tensors.map((t) => storageType(t.dtype)));
      if (dtypes.size > 1) throw new CompileError(`kernel k${group.id}: ${r.tensors.map(describe).join(" and ")} share a range but not a storage type`, "plan/bindings");
      for (const t of r.tensors) slots.set(t, { binding: name, base: 0, packed: false, dtype: t.dtype });
      const role = r.written ? (r.tensors.length > 1 ? "read, written in place" : "written") : "read";
      decls.push({ name, element: storageType(r.tensors[0]!.dtype), access, comment: `${r.tensors.map(describe).join(" → ")} (${role})` });
      out.push({ buffer: r.buffer, offset: r.offset, size: r.size });
      return;
    }
    const start = Math.min(...g.map((r) => r.offset));
    const end = Math.max(...g.map((r) => r.offset + r.size));
    for (const r of g) for (const t of r.tensors) slots.set(t, { binding: name, base: (r.offset - start) / 4, packed: true, dtype: t.dtype });
    decls.push({ name, element: "u32", access, comment: `packed: ${g.map((r) => `${r.tensors.map((t) => `%${t.id}`).join("→")} at word ${(r.offset - start) / 4}`).join(", ")}` });
    out.push({ buffer: g[0]!.buffer, offset: start, size: end - start });
  });
  for (const r of sliced) {
    const access = writtenBuffers.has(r.buffer) ? "read_write" : "read";
    const bytes = r.tensors[0]!.dtype === "f16" ? 2 : 4;
    const slices: NonNullable<TensorSlot["slices"]> = [];
    for (let at = 0; at < r.size; at += sliceBytes) {
      const name = `t${decls.length}`;
      const size = Math.min(sliceBytes, r.size - at);
      slices.push({ binding: name, start: at / bytes, count: Math.ceil(size / bytes) });
      decls.push({ name, element: storageType(r.tensors[0]!.dtype), access, comment: `${r.tensors.map(describe).join(" → ")}, slice ${slices.length} (elements ${at / bytes}…)` });
      out.push({ buffer: r.buffer, offset: r.offset + at, size });
    }
    for (const t of r.tensors) slots.set(t, { binding: slices[0]!.binding, base: 0, packed: false, dtype: t.dtype, slices });
  }
  for (const r of out) {
    if (r.size > limits.maxStorageBufferBindingSize) {
      throw new CompileError(`kernel k${group.id} binds ${r.size} bytes of buffer ${r.buffer}, more than maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}); binding a tensor in slices is not supported yet`, "plan/bindings");
    }
  }
  return { decls, ranges: out, slots, packed };
}
