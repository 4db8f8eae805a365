// Kernel groups: the unit of fusion. A group is a set of graph nodes computed by one kernel;
// its outputs are written to memory, its inputs are tensors other kernels (or the caller)
// wrote. A Schedule is the graph cut into groups, in execution order, with the reason each
// materialized tensor exists: that reason is what `explain` prints for every boundary.
import { fmtAttrs, type Graph, type Node } from "@dorafuse/core";

/**
 * - map: outputs of one shape, each element computed independently (elementwise, layout,
 *   gather, iota, random).
 * - reduce: reductions over the same rows, plus values that read a reduction's result back
 *   over the row (softmax, layerNorm) — one workgroup handles whole rows.
 * - matmul: a tiled matrix product with fused operand prologues and an elementwise epilogue.
 * - contraction: a matrix product with the other products of its K-loop and their low-rank
 *   epilogue (fusion/contraction.ts).
 * - scatter: scatterAdd, each output element summing its updates (deterministic).
 * - custom: a library-defined kernel template.
 */
export type GroupKind = "map" | "reduce" | "matmul" | "contraction" | "scatter" | "custom";

export interface KernelGroup {
  id: number;
  kind: GroupKind;
  /** Nodes this kernel writes to memory. */
  outputs: Node[];
  /** The reductions (in order) / the matmul / scatter / custom node the kernel is built around. */
  anchors: Node[];
  /** Every node computed in the kernel, in topological order (outputs, anchors and fused producers). */
  nodes: Node[];
  /** Materialized tensors the kernel reads (graph inputs or other kernels' outputs). */
  inputs: Node[];
}

export interface Schedule {
  graph: Graph;
  /** In execution order: every group's inputs are written by earlier groups or are graph inputs. */
  groups: KernelGroup[];
  /** Why each materialized node is written to memory instead of fused into its consumers. */
  reasons: Map<Node, string>;
  /** Fusion decisions that merged kernels, for `explain`. */
  merges: string[];
}

/** `%12` */
export const ref = (n: Node): string => `%${n.id}`;

export function describeNode(n: Node): string {
  const args = n.inputs.map(ref).join(" ");
  const attrs = n.op === "input" ? "" : fmtAttrs(n.attrs).replace(/<graph [0-9a-f]+>/g, "<graph>");
  return `${ref(n)}:${n.dtype}[${n.shape.join(",")}] = ${n.op}${attrs}${args ? " " + args : ""}`;
}

/** The readable form of a schedule: one block per kernel with its nodes and boundaries. */
export function printSchedule(s: Schedule): string {
  const lines: string[] = [];
  for (const g of s.groups) {
    lines.push(`kernel k${g.id} (${g.kind}${g.anchors.length ? ` around ${g.anchors.map(ref).join(", ")}` : ""})`);
    lines.push(`  reads  ${g.inputs.length ? g.inputs.map((n) => `${ref(n)}${n.op === "input" ? ` "${String(n.attrs.name)}"` : ""}`).join(", ") : "(nothing)"}`);
    for (const n of g.nodes) lines.push(`    ${describeNode(n)}`);
    for (const o of g.outputs) lines.push(`  writes ${ref(o)}: ${s.reasons.get(o) ?? "materialized"}`);
  }
  if (s.merges.length) lines.push("fusion decisions:", ...s.merges.map((m) => `  ${m}`));
  return lines.join("\n");
}
