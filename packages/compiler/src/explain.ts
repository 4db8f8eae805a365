// explain: what the compiler made of a function or graph, for a person. The graph after the
// passes, each kernel with the nodes it computes, what it reads (and why each of those
// tensors had to be written to memory by an earlier kernel — the reason for every kernel
// boundary), its schedule and WGSL, the fusion decisions, and the plan's totals.
import { printGraph, type Graph } from "@dorafuse/core";
import { lowerGraph, type CompileGraphOptions, type LoweredGraph } from "./compile-graph.js";
import { ref } from "./fusion/group.js";
import { fmtBytes, fmtCount, printTotals } from "./report.js";
import { traceCall, type TraceCallOptions } from "./trace-call.js";

export interface ExplainOptions extends Omit<CompileGraphOptions, "state" | "outputNames">, TraceCallOptions {
  /** Include each kernel's WGSL. Default true. */
  wgsl?: boolean;
}

const isGraph = (x: unknown): x is Graph => typeof x === "object" && x !== null && "nodes" in x && "outputs" in x && "inputs" in x;

/** Explains a graph, or a function traced at `specs`. */
export function explain(fnOrGraph: Graph | ((...args: never[]) => unknown), specs: readonly unknown[] = [], options: ExplainOptions = {}): string {
  const { state, names, dims, wgsl, ...rest } = options;
  if (isGraph(fnOrGraph)) return explainLowered(lowerGraph(fnOrGraph, rest), wgsl ?? true);
  const t = traceCall(fnOrGraph, specs, { ...(state ? { state } : {}), ...(names ? { names } : {}), ...(dims ? { dims } : {}) });
  return explainLowered(lowerGraph(t.graph, { ...rest, state: t.pairs, outputNames: t.outNames }), wgsl ?? true);
}

export function explainLowered(l: LoweredGraph, withWgsl = true): string {
  const out: string[] = [];
  const producer = new Map(l.kernels.flatMap((k) => k.group.outputs.map((o) => [o, k] as const)));
  out.push(`== graph after passes (${l.graph.nodes.length} nodes) ==`, printGraph(l.graph, { globalIds: true }), "");
  out.push(`== kernels (${l.kernels.length}) ==`);
  for (const k of l.kernels) {
    const g = k.group;
    out.push(`${k.kernel.name}: ${k.summary}`);
    out.push(`  computes ${g.nodes.filter((n) => n.op !== "constant").map(ref).join(" ") || "(copies only)"}`);
    for (const x of g.inputs) {
      const from = producer.get(x);
      const why = x.op === "input" ? `graph input "${String(x.attrs.name)}"` : from ? `from ${from.kernel.name} — ${l.schedule.reasons.get(x) ?? "materialized"}` : "materialized";
      out.push(`  reads  ${ref(x)} ${x.dtype}[${x.shape}]: ${why}`);
    }
    for (const o of g.outputs) out.push(`  writes ${ref(o)} ${o.dtype}[${o.shape}]: ${l.schedule.reasons.get(o) ?? ""}`);
    if (k.packed.length) out.push(`  packed bindings: the tensors of buffer${k.packed.length > 1 ? "s" : ""} ${k.packed.join(", ")} share one binding each (adapter allows ${l.target.limits.maxStorageBuffersPerShaderStage})`);
    out.push(`  ${fmtCount(k.kernel.flops ?? 0)} FLOPs, reads ${fmtBytes(k.bytesRead)}, writes ${fmtBytes(k.bytesWritten)}`);
  }
  if (l.schedule.merges.length) out.push("", "== fusion decisions ==", ...l.schedule.merges);
  if (l.memory.inPlace.length) out.push("", "== in place ==", ...l.memory.inPlace.map(([x, y]) => `${ref(y)} is written over ${ref(x)}, which dies in the kernel that computes it`));
  if (l.memory.copies.length) out.push("", "== copies after the last kernel ==", ...l.memory.copies.map((c) => c.label));
  if (withWgsl) {
    out.push("", "== WGSL ==");
    for (const k of l.kernels) out.push(`--- ${k.kernel.name} ---`, k.kernel.wgsl, "");
  }
  out.push("", "== totals ==", printTotals(l.totals));
  return out.join("\n");
}
