// @dorafuse/compiler: graph passes, fusion into kernels, WGSL generation, memory planning,
// and `compile` — a traced function turned into a callable that runs on the GPU.
export { CompileError } from "./errors.js";
export { DEFAULT_LIMITS, DEFAULT_TARGET, targetOf, withLimits, type KernelLimits, type Target, type DeviceLike } from "./limits.js";
export { compileGraph, lowerGraph, type CompileGraphOptions, type LoweredGraph } from "./compile-graph.js";
export { fuse, type FuseOptions } from "./fusion/fuse.js";
export { printSchedule, describeNode, type KernelGroup, type GroupKind, type Schedule } from "./fusion/group.js";
export { planMemory, type MemoryPlan, type StatePair } from "./memory/plan-memory.js";
export { validateMemory, validateDispatches } from "./memory/validate.js";
export { optimize } from "./passes/optimize.js";
export { canonicalize } from "./passes/canonicalize.js";
export { cse } from "./passes/cse.js";
export { dce } from "./passes/dce.js";
export { foldConstants } from "./passes/fold-constants.js";
export { simplify } from "./passes/simplify.js";
export { inlineCalls } from "./passes/inline-calls.js";
export { rewrite, firstOf, type Rule } from "./passes/rewrite.js";
export { registerPass, unregisterPass, type Pass } from "./passes/registry.js";
export { registerKernel, type CustomKernel, type CustomBody, type CustomBodyContext } from "./kernels/custom.js";
export { totalsOf, printTotals, fmtBytes, fmtCount, type PlanTotals } from "./report.js";
export type { KernelInfo } from "./plan/emit.js";
export { compile, type CompileOptions, type CompiledFunction } from "./compile.js";
export { explain, explainLowered, type ExplainOptions } from "./explain.js";
export { compileCacheStats, clearCompileCache, cacheKey } from "./cache.js";
export { toHostArray, fromHostArray } from "./host.js";
export { defineEntry, entryOf, type Entry } from "./entry.js";
export { applyPrimitive } from "@dorafuse/core";
export { defineOp, type OpDefinition, type AppliedOp } from "./custom-op.js";
export { configureDora, withDoraConfig, recognizeDora, scheduleDora, doraPass, chooseSchedule, estimate as estimateDora, doraReport, printDoraReport, type DoraConfig, type DoraLayerReport, type ScheduleChoice } from "./dora/index.js";
