// The one node type of the graph. Nodes are immutable and hash-consed by a GraphBuilder:
// building the same (op, inputs, attrs) twice returns the same Node, so CSE is free and
// equality is identity. A pass never mutates a node; it builds new ones.
import type { DType } from "./dtype.js";

/** Attribute values are plain, printable data (numbers, strings, arrays, nested Graphs for `call`). */
export type AttrValue = number | string | boolean | null | readonly AttrValue[] | { readonly [k: string]: AttrValue } | GraphRef;
export type Attrs = { readonly [k: string]: AttrValue };

/** A sub-graph held in an attribute (bodies of `call` nodes: checkpoint, customVjp). */
export interface GraphRef {
  readonly kind: "graph";
  readonly graph: Graph;
  /** Stable fingerprint of the sub-graph, used in the parent's hash key. */
  readonly fingerprint: string;
}

export interface Node {
  /** Unique per process (a global counter), increasing with creation: sorting by id is a topological order. */
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Node[];
  readonly attrs: Attrs;
  /** Concrete shape: symbolic dimensions are bound to numbers before tracing. */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Hash-consing key: op, input ids, canonical attrs. */
  readonly key: string;
  /** Where the user created it (file:line), for error messages; not part of the key. */
  readonly site?: string;
}

/** A traced function: input nodes (op "input"), output nodes, all nodes in topological order. */
export interface Graph {
  readonly inputs: readonly Node[];
  readonly outputs: readonly Node[];
  readonly nodes: readonly Node[];
}
