// When each materialized tensor is alive, in steps: step i is the dispatch of kernel group i,
// step G (the number of groups) is the end of the plan, where state is written back and
// outputs are copied out. A tensor is alive from the step that writes it to the last step
// that reads it; graph inputs and state are alive from before the first step (-1).
import type { Node } from "@dorafuse/core";
import type { Schedule } from "../fusion/group.js";

export type Lifetime = readonly [first: number, last: number];

export interface Liveness {
  lifetimes: Map<Node, Lifetime>;
  /** The step that writes each tensor (absent for graph inputs). */
  producer: Map<Node, number>;
  /** Steps that read each tensor. */
  readers: Map<Node, number[]>;
  end: number;
}

/** `keep` lists tensors that must survive to the end (outputs, state updates copied back). */
export function liveness(s: Schedule, keep: ReadonlySet<Node>): Liveness {
  const end = s.groups.length;
  const producer = new Map<Node, number>();
  const readers = new Map<Node, number[]>();
  s.groups.forEach((g, i) => {
    for (const o of g.outputs) producer.set(o, i);
    for (const x of g.inputs) readers.set(x, [...(readers.get(x) ?? []), i]);
  });
  const lifetimes = new Map<Node, Lifetime>();
  const note = (n: Node) => {
    const first = producer.get(n) ?? -1;
    const reads = readers.get(n) ?? [];
    const last = keep.has(n) || n.op === "input" ? end : Math.max(first, ...reads);
    lifetimes.set(n, [first, last]);
  };
  for (const n of s.graph.inputs) note(n);
  for (const g of s.groups) for (const o of g.outputs) note(o);
  return { lifetimes, producer, readers, end };
}

export const overlapInTime = (a: Lifetime, b: Lifetime): boolean => a[0] <= b[1] && b[0] <= a[1];
