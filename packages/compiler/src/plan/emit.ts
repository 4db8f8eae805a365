// Emitting the ExecutionPlan: one kernel per group (WGSL from its template, over the bindings
// plan/bindings.ts chose), one dispatch per kernel in schedule order with its workgroups split
// over x, y and z within maxComputeWorkgroupsPerDimension, then the copies that write state
// back. The plan is plain data; `PlanInfo` keeps what reports need beside it.
import type { Node } from "@dorafuse/core";
import type { ExecutionPlan, PlanKernel, PlanStep, PlanTensor } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import { describeNode, ref, type KernelGroup, type Schedule } from "../fusion/group.js";
import { KernelIO } from "../kernels/io.js";
import { templateFor } from "../kernels/lower.js";
import type { Target } from "../limits.js";
import type { MemoryPlan } from "../memory/plan-memory.js";
import { WgslModule } from "../wgsl/module.js";
import { layoutBindings } from "./bindings.js";

export interface NamedTensor {
  name: string;
  node: Node;
}

export interface PlanInterface {
  inputs: NamedTensor[];
  outputs: NamedTensor[];
  state: NamedTensor[];
}

export interface KernelInfo {
  group: KernelGroup;
  kernel: PlanKernel;
  summary: string;
  bytesRead: number;
  bytesWritten: number;
  dispatches: number;
  packed: number[];
}

/** Splits `total` workgroups into x·y·z ≥ total with each ≤ `max` (kernels skip the excess). */
export function grid(total: number, max: number): [number, number, number] {
  if (total <= max) return [total, 1, 1];
  const y = Math.ceil(total / max);
  if (y <= max) return [max, y, 1];
  const z = Math.ceil(total / (max * max));
  if (z > max) throw new CompileError(`a kernel needs ${total} workgroups, more than ${max}³`, "plan/emit");
  return [max, max, z];
}

const bytesOf = (n: Node, homes: MemoryPlan["homes"]) => homes.get(n)?.size ?? 0;
const count = (n: Node) => n.shape.reduce((a, b) => a * b, 1);

export function emitPlan(s: Schedule, memory: MemoryPlan, target: Target, io: PlanInterface): { plan: ExecutionPlan; kernels: KernelInfo[] } {
  const written = new Set<number>();
  for (const g of s.groups) for (const o of g.outputs) written.add(memory.homes.get(o)!.buffer);
  for (const c of memory.copies) written.add(c.dst.buffer);
  const kernels: KernelInfo[] = [];
  const steps: PlanStep[] = [];
  let f16 = false;
  for (const g of s.groups) {
    if (g.outputs.every((o) => count(o) === 0)) continue;
    const layout = layoutBindings(g, memory.homes, written, target.limits);
    const header = [
      `kernel k${g.id} (${g.kind})`,
      ...g.nodes.filter((n) => n.op !== "constant").map((n) => `  ${describeNode(n)}`),
      ...g.outputs.map((o) => `writes ${ref(o)}: ${s.reasons.get(o) ?? ""}`),
    ];
    // a reason may run over several lines; each stays a comment
    const module = new WgslModule(header.flatMap((l) => l.split("\n")));
    for (const d of layout.decls) module.bind(d);
    const inputs = new Set(g.inputs);
    const body = templateFor(g)({ group: g, target, io: new KernelIO(layout.slots), module, isLoaded: (n) => inputs.has(n) });
    const uses16 = [...g.nodes, ...g.inputs].some((n) => n.dtype === "f16");
    if (uses16) {
      if (!target.f16) throw new CompileError(`kernel k${g.id} computes f16 values, but the adapter has no shader-f16`, describeNode(g.nodes.find((n) => n.dtype === "f16") ?? g.inputs[0]!));
      module.enable("f16");
      f16 = true;
    }
    const id = kernels.length;
    const bytesRead = g.inputs.reduce((t, n) => t + bytesOf(n, memory.homes), 0);
    const bytesWritten = g.outputs.reduce((t, n) => t + bytesOf(n, memory.homes), 0);
    const kernel: PlanKernel = {
      id,
      name: `k${g.id}_${g.kind}`,
      wgsl: module.print(body.workgroupSize, [`// ${body.summary}`, ...body.body]),
      entryPoint: "main",
      workgroupSize: [body.workgroupSize, 1, 1],
      bindings: layout.decls.map((d, i) => ({ binding: i, access: d.access })),
      nodes: g.nodes.map(describeNode),
      flops: body.flops,
      bytes: bytesRead + bytesWritten,
    };
    kernels.push({ group: g, kernel, summary: body.summary, bytesRead, bytesWritten, dispatches: 1, packed: layout.packed });
    steps.push({
      kind: "dispatch",
      kernel: id,
      bindings: layout.ranges.map((r, i) => ({ binding: i, ...r })),
      workgroups: grid(Math.max(1, body.workgroups), target.limits.maxComputeWorkgroupsPerDimension),
      label: `k${g.id}: ${g.outputs.map(ref).join(", ")}`,
    });
  }
  for (const c of memory.copies) steps.push({ kind: "copy", src: c.src, dst: { ...c.dst, size: c.src.size }, label: c.label });

  const tensor = (t: NamedTensor): PlanTensor => {
    const h = memory.homes.get(t.node);
    if (!h) throw new CompileError(`"${t.name}" (${ref(t.node)}) has no place in memory`, "plan/emit");
    const size = count(t.node) * (t.node.dtype === "f16" ? 2 : 4);
    return { name: t.name, shape: [...t.node.shape], dtype: t.node.dtype, buffer: h.buffer, offset: h.offset, size };
  };
  const plan: ExecutionPlan = {
    format: "dorafuse.plan",
    version: 1,
    buffers: memory.buffers,
    kernels: kernels.map((k) => k.kernel),
    steps,
    inputs: io.inputs.map(tensor),
    outputs: io.outputs.map(tensor),
    ...(io.state.length ? { state: io.state.map(tensor) } : {}),
    requiredLimits: requiredLimits(kernels.map((k) => k.kernel), steps, memory, target),
    ...(f16 ? { requiredFeatures: ["shader-f16"] } : {}),
  };
  return { plan, kernels };
}

/** The limits this plan actually relies on (so it loads on any adapter that offers them). */
function requiredLimits(kernels: PlanKernel[], steps: PlanStep[], memory: MemoryPlan, target: Target): Record<string, number> {
  const dispatches = steps.filter((s): s is Extract<PlanStep, { kind: "dispatch" }> => s.kind === "dispatch");
  const threads = Math.max(1, ...kernels.map((k) => k.workgroupSize[0]));
  return {
    maxStorageBuffersPerShaderStage: Math.max(1, ...kernels.map((k) => k.bindings.length)),
    maxComputeInvocationsPerWorkgroup: threads,
    maxComputeWorkgroupSizeX: threads,
    maxComputeWorkgroupsPerDimension: Math.max(1, ...dispatches.flatMap((d) => d.workgroups)),
    maxStorageBufferBindingSize: Math.max(4, ...dispatches.flatMap((d) => d.bindings.map((b) => b.size))),
    maxBufferSize: Math.max(4, ...memory.buffers.map((b) => b.size)),
    minStorageBufferOffsetAlignment: target.limits.minStorageBufferOffsetAlignment,
  };
}
