// The memory plan: where every materialized tensor lives, decided before anything runs.
//
// - Graph inputs live in one "input" buffer, state (parameters, optimizer moments) in one
//   "state" buffer, every other tensor — intermediates and outputs — in one "scratch" arena.
//   All offsets are multiples of the adapter's minStorageBufferOffsetAlignment.
// - Arena offsets come from the tensors' lifetimes: tensors alive at the same step never
//   overlap; the rest share memory (greedy by size: each tensor, largest first, takes the
//   lowest offset free over its lifetime). The arena's size is the peak.
// - In place: WebGPU forbids binding overlapping ranges when one is writable, so a kernel
//   cannot read a tensor through one binding and write another over it. It may read and
//   write ONE binding: an elementwise output takes the memory of an input that dies in that
//   kernel when every invocation reads that input only at the element it writes. A state
//   update is written over its own state tensor the same way when nothing reads the old
//   value later; otherwise it is computed in the arena and copied back at the end.
import { byteSize, type Node } from "@dorafuse/core";
import type { BufferRange, PlanBuffer } from "@dorafuse/runtime";
import type { Schedule } from "../fusion/group.js";
import { identityInputs } from "../fusion/probe.js";
import type { Target } from "../limits.js";
import { liveness, overlapInTime, type Lifetime } from "./liveness.js";

export interface StatePair {
  input: Node;
  update: Node;
}

export interface MemoryPlan {
  buffers: PlanBuffer[];
  homes: Map<Node, BufferRange>;
  lifetimes: Map<Node, Lifetime>;
  /** [input, output] pairs sharing one range in the output's kernel. */
  inPlace: [Node, Node][];
  /** Copies after the last dispatch: state updates computed elsewhere, written back. */
  copies: { src: BufferRange; dst: BufferRange; label: string }[];
  arenaBytes: number;
  /** Bytes of every buffer the plan allocates. */
  peakBytes: number;
  alignment: number;
}

export const ARENA = 0;
export const INPUTS = 1;
export const STATE = 2;

const align = (n: number, a: number) => Math.ceil(n / a) * a;
/** Bytes a tensor occupies: whole 4-byte words (writes and bindings are word-sized), at least one. */
export const tensorBytes = (n: Node): number => Math.max(4, align(n.shape.reduce((a, b) => a * b, 1) * byteSize(n.dtype), 4));

interface Slot {
  tensors: Node[];
  size: number;
  life: [number, number];
  offset: number;
}

export function planMemory(s: Schedule, state: readonly StatePair[], target: Target): MemoryPlan {
  const a = target.limits.minStorageBufferOffsetAlignment;
  const stateInputs = new Set(state.map((p) => p.input));
  const keep = new Set<Node>([...s.graph.outputs, ...state.map((p) => p.update)]);
  const live = liveness(s, keep);
  const homes = new Map<Node, BufferRange>();
  const buffers: PlanBuffer[] = [];

  const sequential = (id: number, role: PlanBuffer["role"], label: string, nodes: Node[]) => {
    let at = 0;
    for (const n of nodes) {
      homes.set(n, { buffer: id, offset: at, size: tensorBytes(n) });
      at = align(at + tensorBytes(n), a);
    }
    if (nodes.length) buffers.push({ id, size: Math.max(4, align(at, 4)), role, label });
  };
  sequential(INPUTS, "input", "inputs", s.graph.inputs.filter((n) => !stateInputs.has(n)));
  sequential(STATE, "state", "state", [...stateInputs]);

  // state updates written in place over their state tensor
  const inPlace: [Node, Node][] = [];
  const stateHomeOf = new Map<Node, Node>();
  const claimed = new Set<Node>();
  for (const p of state) {
    const step = live.producer.get(p.update);
    if (step === undefined || claimed.has(p.update) || stateHomeOf.has(p.update)) continue;
    const g = s.groups[step]!;
    const laterReads = (live.readers.get(p.input) ?? []).some((r) => r > step);
    const readsHere = g.inputs.includes(p.input);
    if (laterReads) continue;
    if (readsHere && !identityInputs(g).has(p.input)) continue;
    if (tensorBytes(p.update) !== tensorBytes(p.input)) continue;
    stateHomeOf.set(p.update, p.input);
    homes.set(p.update, homes.get(p.input)!);
    claimed.add(p.update);
    if (readsHere) inPlace.push([p.input, p.update]);
  }

  // arena slots, merging in-place pairs
  const slotOf = new Map<Node, Slot>();
  const slots: Slot[] = [];
  s.groups.forEach((g, step) => {
    const reusable = identityInputs(g);
    const taken = new Set<Slot>();
    for (const o of g.outputs) {
      if (homes.has(o)) continue;
      const life = live.lifetimes.get(o)!;
      const donor = g.inputs.find((x) => {
        const sl = slotOf.get(x);
        return sl !== undefined && !taken.has(sl) && reusable.has(x) && x.dtype === o.dtype && x.shape.join() === o.shape.join() && live.lifetimes.get(x)![1] === step && sl.life[1] === step && tensorBytes(x) === tensorBytes(o);
      });
      if (donor) {
        const sl = slotOf.get(donor)!;
        sl.tensors.push(o);
        sl.life[1] = life[1];
        taken.add(sl);
        slotOf.set(o, sl);
        inPlace.push([donor, o]);
        continue;
      }
      const sl: Slot = { tensors: [o], size: tensorBytes(o), life: [life[0], life[1]], offset: -1 };
      slots.push(sl);
      slotOf.set(o, sl);
      taken.add(sl);
    }
  });
  // A state update that is itself a state tensor (state that swaps or rotates) is read by the
  // copies at the end while other copies overwrite state: stage such values in the arena first.
  const end = live.end;
  const staged = new Map<StatePair, Slot>();
  for (const p of state) {
    if (p.update === p.input || !stateInputs.has(p.update)) continue;
    const sl: Slot = { tensors: [], size: tensorBytes(p.update), life: [end, end], offset: -1 };
    slots.push(sl);
    staged.set(p, sl);
  }
  const arenaBytes = placeSlots(slots, a);
  for (const sl of slots) for (const t of sl.tensors) homes.set(t, { buffer: ARENA, offset: sl.offset, size: tensorBytes(t) });
  buffers.unshift({ id: ARENA, size: Math.max(4, align(arenaBytes, 4)), role: "scratch", label: "arena" });

  const copies: MemoryPlan["copies"] = [];
  const stagedRange = (p: StatePair) => ({ buffer: ARENA, offset: staged.get(p)!.offset, size: tensorBytes(p.update) });
  for (const p of staged.keys()) copies.push({ src: homes.get(p.update)!, dst: stagedRange(p), label: `stage state "${String(p.update.attrs.name)}" for "${String(p.input.attrs.name)}"` });
  for (const p of state) {
    if (stateHomeOf.get(p.update) === p.input || p.update === p.input) continue;
    const src = staged.has(p) ? stagedRange(p) : homes.get(p.update)!;
    copies.push({ src, dst: homes.get(p.input)!, label: `state "${String(p.input.attrs.name)}" ← %${p.update.id}` });
  }
  buffers.sort((x, y) => x.id - y.id);
  return {
    buffers,
    homes,
    lifetimes: live.lifetimes,
    inPlace,
    copies,
    arenaBytes,
    peakBytes: buffers.reduce((t, b) => t + b.size, 0),
    alignment: a,
  };
}

/** Greedy by size: largest slot first, each at the lowest aligned offset free over its lifetime. */
function placeSlots(slots: Slot[], alignment: number): number {
  const order = [...slots].sort((x, y) => y.size - x.size || x.life[0] - y.life[0]);
  const placed: Slot[] = [];
  let top = 0;
  for (const sl of order) {
    const busy = placed.filter((p) => overlapInTime(p.life, sl.life)).sort((x, y) => x.offset - y.offset);
    let at = 0;
    for (const p of busy) {
      if (at + sl.size <= p.offset) break;
      at = Math.max(at, align(p.offset + p.size, alignment));
    }
    sl.offset = at;
    placed.push(sl);
    top = Math.max(top, at + sl.size);
  }
  return top;
}
