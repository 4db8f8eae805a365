// What the plan does with each DoRA layer, read from the plan itself: which kernels compute
// its forward and its backward (and so how many dispatches each costs), the schedule and why,
// and any tensor the plan materializes that is shaped like the layer's weight — there must be
// none besides W: the point of the fused kernels is never to build W + s·B·A or B·A.
import type { Node } from "@dorafuse/core";
import type { LoweredGraph } from "../compile-graph.js";

export const DORA_FORWARD_OPS: ReadonlySet<string> = new Set(["doraLinear", "doraStats"]);
export const DORA_BACKWARD_OPS: ReadonlySet<string> = new Set(["doraGradRows", "doraGradCols"]);

export interface DoraLayerReport {
  /** The layer's weight: its graph input name, or its node. */
  weight: string;
  shape: [out: number, inDim: number];
  schedule: string;
  why: string;
  /** Kernel names, in dispatch order. */
  forward: string[];
  backward: string[];
  /**
   * Materialized tensors (not graph inputs) shaped like W: with an axis of size out and another
   * of size in (W + s·B·A, B·A, a merged weight, W's gradient would be) — other than the
   * layer's activations' shapes.
   */
  weightSized: string[];
}

const nameOf = (n: Node) => (n.op === "input" ? String(n.attrs.name) : `%${n.id}`);

/** One entry per DoRA layer of a lowered graph. */
export function doraReport(l: LoweredGraph): DoraLayerReport[] {
  const layers = new Map<Node, DoraLayerReport>();
  const byB = new Map<Node, Node>();
  const layerOf = (w: Node): DoraLayerReport => {
    let r = layers.get(w);
    if (!r) {
      const [out, inDim] = w.shape as [number, number];
      r = { weight: nameOf(w), shape: [out, inDim], schedule: "", why: "", forward: [], backward: [], weightSized: [] };
      layers.set(w, r);
    }
    return r;
  };
  // the shapes of each layer's activations (x, dx, y, gy): not weight-sized, even when a batch
  // of `out` rows of `in` makes them W's shape
  const activations = new Map<Node, Set<string>>();
  for (const n of l.graph.nodes) {
    if (n.op !== "doraLinear") continue;
    const [x, w] = n.inputs as [Node, Node];
    byB.set(n.inputs[3]!, w);
    const rows = x.shape.slice(0, -1);
    const count = rows.reduce((p, d) => p * d, 1);
    activations.set(w, new Set([[...rows, x.shape.at(-1)!], [...rows, w.shape[0]!], [count, x.shape.at(-1)!], [count, w.shape[0]!]].map((s) => s.join())));
  }
  for (const k of l.kernels) {
    const a = k.group.anchors[0];
    if (!a) continue;
    if (DORA_FORWARD_OPS.has(a.op)) {
      const r = layerOf(a.inputs[1]!);
      r.forward.push(k.kernel.name);
      if (a.op === "doraLinear") [r.schedule, r.why] = [String(a.attrs.schedule ?? ""), String(a.attrs.why ?? "")];
    } else if (DORA_BACKWARD_OPS.has(a.op)) {
      const w = a.op === "doraGradCols" ? a.inputs[4]! : byB.get(a.inputs[2]!);
      if (w) layerOf(w).backward.push(k.kernel.name);
    }
  }
  const materialized = [...l.memory.homes.keys()].filter((n) => n.op !== "input");
  for (const [w, r] of layers) {
    const [out, inDim] = r.shape;
    const likeW = (s: readonly number[]) => s.some((d, i) => d === out && s.some((e, j) => j !== i && e === inDim));
    const acts = activations.get(w) ?? new Set();
    r.weightSized = materialized.filter((n) => n !== w && likeW(n.shape) && !acts.has(n.shape.join())).map((n) => `%${n.id} ${n.op} ${n.dtype}[${n.shape}]`);
  }
  return [...layers.values()];
}

/** The report as text, one block per layer (what `explain` would say about DoRA). */
export function printDoraReport(r: readonly DoraLayerReport[]): string {
  return r
    .map((x) => [
      `DoRA layer ${x.weight} [${x.shape.join("×")}]: ${x.schedule} schedule — ${x.why}`,
      `  forward: ${x.forward.length} dispatch${x.forward.length === 1 ? "" : "es"} (${x.forward.join(", ")})`,
      `  backward: ${x.backward.length} dispatch${x.backward.length === 1 ? "" : "es"}${x.backward.length ? ` (${x.backward.join(", ")})` : ""}`,
      `  tensors shaped like W: ${x.weightSized.length ? x.weightSized.join(", ") : "none"}`,
    ].join("\n"))
    .join("\n");
}
