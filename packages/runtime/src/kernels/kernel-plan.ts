// The ExecutionPlan of one kernel dispatched once, each tensor in its own buffer: what a
// hand-written WGSL kernel needs to run through loadPlan/run.

import { align4, elementCount, gpuByteSize } from "../dtypes.js";
import type { ExecutionPlan, PlanBuffer, PlanDType, PlanKernelBinding, PlanTensor } from "../plan.js";

export interface KernelTensor {
  name: string;
  shape: number[];
  dtype: PlanDType;
  /** input/output: the plan's interface; state: persists between runs; constant: from `data`; scratch: neither. */
  role: PlanBuffer["role"];
  /** How the WGSL declares it. */
  access: PlanKernelBinding["access"];
  /** @binding number; default the tensor's index in the list. */
  binding?: number;
  /** Contents of a constant, or the initial value of a state tensor. */
  data?: ArrayBufferView;
  /** Bytes to bind when the shader's type needs more than the tensor holds (a uniform struct's padding). */
  bindSize?: number;
}

export interface KernelPlanSpec {
  name: string;
  wgsl: string;
  entryPoint?: string;
  workgroupSize: [number, number, number];
  workgroups: [number, number, number];
  tensors: KernelTensor[];
  flops?: number;
  bytes?: number;
}

export function kernelPlan(spec: KernelPlanSpec): ExecutionPlan {
  const buffers: PlanBuffer[] = [];
  const ranges: (PlanTensor & { binding: number; access: PlanKernelBinding["access"]; role: PlanBuffer["role"]; bindSize: number })[] = [];
  spec.tensors.forEach((t, id) => {
    const bytes = elementCount(t.shape) * gpuByteSize(t.dtype);
    const bindSize = align4(Math.max(4, bytes, t.bindSize ?? 0));
    const buffer: PlanBuffer = { id, size: bindSize, role: t.role, label: t.name };
    if (t.data) buffer.data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString("base64");
    buffers.push(buffer);
    ranges.push({ name: t.name, buffer: id, offset: 0, size: bytes, shape: t.shape, dtype: t.dtype, binding: t.binding ?? id, access: t.access, role: t.role, bindSize });
  });
  const tensor = ({ name, buffer, offset, size, shape, dtype }: PlanTensor): PlanTensor => ({ name, buffer, offset, size, shape, dtype });
  const state = ranges.filter((r) => r.role === "state").map(tensor);
  return {
    format: "dorafuse.plan",
    version: 1,
    buffers,
    kernels: [
      {
        id: 0,
        name: spec.name,
        wgsl: spec.wgsl,
        entryPoint: spec.entryPoint ?? "main",
        workgroupSize: spec.workgroupSize,
        bindings: ranges.map((r) => ({ binding: r.binding, access: r.access })),
        ...(spec.flops !== undefined ? { flops: spec.flops } : {}),
        ...(spec.bytes !== undefined ? { bytes: spec.bytes } : {}),
      },
    ],
    steps: [
      {
        kind: "dispatch",
        kernel: 0,
        bindings: ranges.map((r) => ({ binding: r.binding, buffer: r.buffer, offset: 0, size: r.bindSize })),
        workgroups: spec.workgroups,
        label: spec.name,
      },
    ],
    inputs: ranges.filter((r) => r.role === "input").map(tensor),
    outputs: ranges.filter((r) => r.role === "output").map(tensor),
    ...(state.length ? { state } : {}),
  };
}
