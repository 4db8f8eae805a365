// The totals of a compiled plan, as `explain` and the benchmark print them: kernels,
// dispatches per call, bytes read and written, FLOPs, and peak memory.
import type { ExecutionPlan } from "@dorafuse/runtime";
import type { KernelInfo } from "./plan/emit.js";
import type { MemoryPlan } from "./memory/plan-memory.js";

export interface PlanTotals {
  kernels: number;
  dispatches: number;
  copies: number;
  bytesRead: number;
  bytesWritten: number;
  flops: number;
  /** Bytes of every buffer the plan allocates (arena + inputs + state): known before it runs. */
  peakBytes: number;
  arenaBytes: number;
  /** Tensors written over an input in place. */
  inPlace: number;
}

export function totalsOf(plan: ExecutionPlan, kernels: readonly KernelInfo[], memory: MemoryPlan): PlanTotals {
  return {
    kernels: plan.kernels.length,
    dispatches: plan.steps.filter((s) => s.kind === "dispatch").length,
    copies: plan.steps.filter((s) => s.kind === "copy").length,
    bytesRead: kernels.reduce((t, k) => t + k.bytesRead, 0),
    bytesWritten: kernels.reduce((t, k) => t + k.bytesWritten, 0),
    flops: kernels.reduce((t, k) => t + (k.kernel.flops ?? 0), 0),
    peakBytes: memory.peakBytes,
    arenaBytes: memory.arenaBytes,
    inPlace: memory.inPlace.length,
  };
}

const units = ["B", "KiB", "MiB", "GiB"];
export function fmtBytes(n: number): string {
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function printTotals(t: PlanTotals): string {
  return [
    `kernels: ${t.kernels}`,
    `dispatches per call: ${t.dispatches}${t.copies ? ` (+ ${t.copies} copies)` : ""}`,
    `bytes read: ${fmtBytes(t.bytesRead)}, written: ${fmtBytes(t.bytesWritten)}`,
    `FLOPs: ${fmtCount(t.flops)}`,
    `peak memory: ${fmtBytes(t.peakBytes)} (arena ${fmtBytes(t.arenaBytes)}${t.inPlace ? `, ${t.inPlace} tensors written in place` : ""})`,
  ].join("\n");
}
