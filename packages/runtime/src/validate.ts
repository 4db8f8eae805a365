// Checks an ExecutionPlan against itself, its shaders and a device's limits before anything
// is allocated, so a bad plan fails with a PlanError naming the kernel, step, binding or
// tensor rather than with a WebGPU validation message mid-run.

import { elementCount, gpuByteSize, PLAN_DTYPES } from "./dtypes.js";
import { PlanError } from "./errors.js";
import type { BufferRange, ExecutionPlan, PlanBuffer, PlanKernel, PlanStep, PlanTensor } from "./plan.js";
import { reflectWgsl } from "./reflect.js";

export interface DeviceCapabilities {
  limits: Readonly<Record<string, number>>;
  features: ReadonlySet<string>;
}

const isCount = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;

export function base64Length(data: string): number {
  return Buffer.from(data, "base64").byteLength;
}

export function validatePlan(plan: ExecutionPlan, device: DeviceCapabilities): void {
  if (plan.format !== "dorafuse.plan" || plan.version !== 1) {
    throw new PlanError(`expected an ExecutionPlan with format "dorafuse.plan" and version 1, found format ${JSON.stringify(plan.format)} version ${JSON.stringify(plan.version)}`);
  }
  checkRequirements(plan, device);
  const buffers = checkBuffers(plan, device.limits);
  const kernels = new Map<number, PlanKernel>();
  for (const kernel of plan.kernels) {
    if (kernels.has(kernel.id)) throw new PlanError(`two kernels have id ${kernel.id} ("${kernels.get(kernel.id)!.name}" and "${kernel.name}")`);
    kernels.set(kernel.id, kernel);
    checkKernel(kernel, device.limits);
  }
  plan.steps.forEach((step, index) => checkStep(step, index, kernels, buffers, device.limits));
  for (const [list, tensors] of [["input", plan.inputs], ["output", plan.outputs], ["state", plan.state ?? []]] as const) {
    checkTensors(list, tensors, buffers);
  }
}

/** The required limits a device does not meet (alignments, "min…", are met by smaller values; every other limit by larger ones). */
export function unmetLimits(required: Readonly<Record<string, number>>, limits: Readonly<Record<string, number | undefined>>): { key: string; needed: number; have: number | undefined; min: boolean }[] {
  return Object.entries(required).flatMap(([key, needed]) => {
    const have = limits[key];
    const min = key.startsWith("min");
    return have !== undefined && (min ? have <= needed : have >= needed) ? [] : [{ key, needed, have, min }];
  });
}

function checkRequirements(plan: ExecutionPlan, device: DeviceCapabilities): void {
  const missing = (plan.requiredFeatures ?? []).filter((f) => !device.features.has(f));
  if (missing.length) throw new PlanError(`the plan needs the features [${missing.join(", ")}], which this device does not have (it has [${[...device.features].join(", ")}])`);
  const [first] = unmetLimits(plan.requiredLimits ?? {}, device.limits);
  if (!first) return;
  if (first.have === undefined) throw new PlanError(`the plan needs the limit ${first.key} = ${first.needed}, which this device does not report`);
  throw new PlanError(`the plan was built for ${first.key} = ${first.needed}, this device has ${first.key} = ${first.have}`);
}

function checkBuffers(plan: ExecutionPlan, limits: Readonly<Record<string, number>>): Map<number, PlanBuffer> {
  const buffers = new Map<number, PlanBuffer>();
  for (const buffer of plan.buffers) {
    const name = `buffer ${buffer.id}${buffer.label ? ` ("${buffer.label}")` : ""}`;
    if (buffers.has(buffer.id)) throw new PlanError(`two buffers have id ${buffer.id}`);
    buffers.set(buffer.id, buffer);
    if (!isCount(buffer.size) || buffer.size === 0 || buffer.size % 4 !== 0) throw new PlanError(`${name}: size must be a positive multiple of 4 bytes, found ${buffer.size}`);
    if (buffer.size > limits.maxBufferSize!) {
      throw new PlanError(`${name} needs ${buffer.size} bytes, more than this device's maxBufferSize of ${limits.maxBufferSize} bytes`);
    }
    if (buffer.data !== undefined) {
      const length = base64Length(buffer.data);
      if (length > buffer.size) throw new PlanError(`${name}: its data holds ${length} bytes, more than its size of ${buffer.size}`);
    } else if (buffer.role === "constant") {
      throw new PlanError(`${name} has role "constant" but no data`);
    }
  }
  return buffers;
}

function checkKernel(kernel: PlanKernel, limits: Readonly<Record<string, number>>): void {
  const where = `kernel "${kernel.name}" (id ${kernel.id})`;
  const reflection = reflectWgsl(kernel.wgsl);
  const entry = reflection.entryPoints.find((e) => e.name === kernel.entryPoint);
  if (!entry) {
    const found = reflection.entryPoints.map((e) => e.name).join(", ") || "none";
    throw new PlanError(`${where}: the plan names entry point "${kernel.entryPoint}", the WGSL has @compute entry points [${found}]`);
  }
  const [x, y, z] = kernel.workgroupSize;
  if (entry.workgroupSize && entry.workgroupSize.join() !== kernel.workgroupSize.join()) {
    throw new PlanError(`${where}: the plan says workgroup size (${kernel.workgroupSize.join(", ")}), the WGSL says @workgroup_size(${entry.workgroupSize.join(", ")})`);
  }
  const sizeLimits = [limits.maxComputeWorkgroupSizeX!, limits.maxComputeWorkgroupSizeY!, limits.maxComputeWorkgroupSizeZ!];
  if ([x, y, z].some((d, i) => d > sizeLimits[i]!) || x * y * z > limits.maxComputeInvocationsPerWorkgroup!) {
    throw new PlanError(
      `${where}: workgroup size (${x}, ${y}, ${z}) exceeds this device's limits (${sizeLimits.join(", ")}), at most ${limits.maxComputeInvocationsPerWorkgroup} invocations`,
    );
  }
  const seen = new Set<number>();
  for (const b of kernel.bindings) {
    if (seen.has(b.binding)) throw new PlanError(`${where}: binding ${b.binding} is listed twice in the plan`);
    seen.add(b.binding);
  }
  const declared = reflection.bindings;
  const otherGroup = declared.find((d) => d.group !== 0);
  if (otherGroup) throw new PlanError(`${where}: "${otherGroup.text}" uses bind group ${otherGroup.group}; plans put every binding in group 0`);
  for (const b of kernel.bindings) {
    const d = declared.find((d) => d.binding === b.binding);
    if (!d) {
      const have = declared.map((d) => `${d.binding} (${d.name})`).join(", ") || "none";
      throw new PlanError(`${where}, binding ${b.binding}: the plan binds it as ${b.access}, but the WGSL declares no @group(0) @binding(${b.binding}); it declares bindings [${have}]`);
    }
    if (d.access !== b.access) {
      throw new PlanError(`${where}, binding ${b.binding} ("${d.name}"): the plan says ${b.access}, the WGSL declares "${d.text}" (${d.access})`);
    }
  }
  for (const d of declared) {
    if (!seen.has(d.binding)) {
      throw new PlanError(
        `${where}, binding ${d.binding} ("${d.name}"): the WGSL declares "${d.text}" but the plan lists no binding ${d.binding} (the plan has ${kernel.bindings.length} bindings, the WGSL ${declared.length})`,
      );
    }
  }
  const storage = kernel.bindings.filter((b) => b.access !== "uniform").length;
  if (storage > limits.maxStorageBuffersPerShaderStage!) {
    throw new PlanError(`${where} binds ${storage} storage buffers, more than this device's maxStorageBuffersPerShaderStage of ${limits.maxStorageBuffersPerShaderStage}`);
  }
  const uniforms = kernel.bindings.length - storage;
  if (uniforms > limits.maxUniformBuffersPerShaderStage!) {
    throw new PlanError(`${where} binds ${uniforms} uniform buffers, more than this device's maxUniformBuffersPerShaderStage of ${limits.maxUniformBuffersPerShaderStage}`);
  }
}

function checkRange(range: BufferRange, buffers: Map<number, PlanBuffer>, where: string): PlanBuffer {
  const buffer = buffers.get(range.buffer);
  if (!buffer) throw new PlanError(`${where}: buffer ${range.buffer} is not in the plan's buffer table`);
  if (!isCount(range.offset) || !isCount(range.size)) throw new PlanError(`${where}: offset ${range.offset} and size ${range.size} must be whole numbers of bytes`);
  if (range.offset + range.size > buffer.size) {
    throw new PlanError(`${where}: bytes ${range.offset}..${range.offset + range.size} of buffer ${buffer.id} lie past its end (${buffer.size} bytes)`);
  }
  return buffer;
}

const overlaps = (a: BufferRange, b: BufferRange) => a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;

function checkStep(step: PlanStep, index: number, kernels: Map<number, PlanKernel>, buffers: Map<number, PlanBuffer>, limits: Readonly<Record<string, number>>): void {
  const label = step.label ? ` "${step.label}"` : "";
  if (step.kind === "dispatch") {
    const kernel = kernels.get(step.kernel);
    if (!kernel) throw new PlanError(`step ${index}${label}: dispatches kernel ${step.kernel}, which is not in the plan`);
    const where = `step ${index}${label} (dispatch of kernel "${kernel.name}")`;
    const maxGroups = limits.maxComputeWorkgroupsPerDimension!;
    if (step.workgroups.length !== 3 || !step.workgroups.every((n) => isCount(n) && n <= maxGroups)) {
      throw new PlanError(`${where}: workgroups (${step.workgroups.join(", ")}) must be 3 whole numbers of at most ${maxGroups} (maxComputeWorkgroupsPerDimension)`);
    }
    const wanted = kernel.bindings.map((b) => b.binding).sort((a, b) => a - b);
    const given = step.bindings.map((b) => b.binding).sort((a, b) => a - b);
    if (wanted.join() !== given.join()) {
      throw new PlanError(`${where}: the kernel has bindings [${wanted.join(", ")}], the step binds [${given.join(", ")}]`);
    }
    for (const b of step.bindings) {
      const access = kernel.bindings.find((k) => k.binding === b.binding)!.access;
      const at = `${where}, binding ${b.binding}`;
      checkRange(b, buffers, at);
      const uniform = access === "uniform";
      const align = uniform ? limits.minUniformBufferOffsetAlignment! : limits.minStorageBufferOffsetAlignment!;
      const maxSize = uniform ? limits.maxUniformBufferBindingSize! : limits.maxStorageBufferBindingSize!;
      if (b.offset % align !== 0) throw new PlanError(`${at}: offset ${b.offset} is not a multiple of this device's ${uniform ? "minUniformBufferOffsetAlignment" : "minStorageBufferOffsetAlignment"} (${align})`);
      if (b.size === 0 || b.size % 4 !== 0) throw new PlanError(`${at}: size ${b.size} must be a positive multiple of 4 bytes`);
      if (b.size > maxSize) {
        throw new PlanError(`${at}: binds ${b.size} bytes, more than this device's ${uniform ? "maxUniformBufferBindingSize" : "maxStorageBufferBindingSize"} of ${maxSize}; bind the tensor in slices`);
      }
      if (access === "read_write") {
        const alias = step.bindings.find((o) => o !== b && overlaps(o, b));
        if (alias) throw new PlanError(`${at} is writable and overlaps binding ${alias.binding} (buffer ${b.buffer}); WebGPU forbids aliasing a writable binding`);
      }
    }
  } else if (step.kind === "copy") {
    const where = `step ${index}${label} (copy)`;
    checkRange(step.src, buffers, `${where}, source`);
    checkRange(step.dst, buffers, `${where}, destination`);
    if (step.src.size !== step.dst.size) throw new PlanError(`${where}: copies ${step.src.size} bytes into a range of ${step.dst.size}`);
    if ([step.src.offset, step.dst.offset, step.src.size].some((n) => n % 4 !== 0)) throw new PlanError(`${where}: offsets and size must be multiples of 4 bytes`);
    if (overlaps(step.src, step.dst)) throw new PlanError(`${where}: source and destination overlap in buffer ${step.src.buffer}`);
  } else if (step.kind === "write") {
    const where = `step ${index}${label} (write)`;
    checkRange(step.dst, buffers, where);
    const length = base64Length(step.data);
    if (length !== step.dst.size) throw new PlanError(`${where}: its data holds ${length} bytes, the destination range ${step.dst.size}`);
    if (step.dst.offset % 4 !== 0 || step.dst.size % 4 !== 0) throw new PlanError(`${where}: offset and size must be multiples of 4 bytes`);
  } else {
    throw new PlanError(`step ${index}: unknown kind ${JSON.stringify((step as { kind: unknown }).kind)}; expected dispatch, copy or write`);
  }
}

function checkTensors(list: string, tensors: readonly PlanTensor[], buffers: Map<number, PlanBuffer>): void {
  const names = new Set<string>();
  for (const t of tensors) {
    const where = `${list} "${t.name}"`;
    if (names.has(t.name)) throw new PlanError(`two ${list}s are named "${t.name}"`);
    names.add(t.name);
    if (!PLAN_DTYPES.includes(t.dtype)) throw new PlanError(`${where}: unknown dtype ${JSON.stringify(t.dtype)}; expected one of ${PLAN_DTYPES.join(", ")}`);
    if (!t.shape.every(isCount)) throw new PlanError(`${where}: shape [${t.shape.join(", ")}] must hold whole numbers`);
    checkRange(t, buffers, where);
    const bytes = elementCount(t.shape) * gpuByteSize(t.dtype);
    if (t.size !== bytes) throw new PlanError(`${where} is ${t.dtype}[${t.shape.join(",")}] (${bytes} bytes) but its range holds ${t.size} bytes`);
    if (t.offset % 4 !== 0) throw new PlanError(`${where}: offset ${t.offset} is not a multiple of 4`);
  }
}
