// The memory plan's validator, run over every graph the tests compile: no two tensors alive
// at the same step share bytes (except an input and the output written over it in place),
// every range is aligned and inside its buffer, and every dispatch respects WebGPU's rules
// and the adapter's limits — no buffer bound both read-only and writable, no writable
// binding overlapping another, no more storage bindings than allowed, workgroup counts and
// sizes within bounds. It throws a CompileError naming the tensors or the step.
import type { Node } from "@dorafuse/core";
import type { BufferRange, ExecutionPlan } from "@dorafuse/runtime";
import { CompileError } from "../errors.js";
import type { Target } from "../limits.js";
import { overlapInTime } from "./liveness.js";
import type { MemoryPlan } from "./plan-memory.js";

const overlaps = (a: BufferRange, b: BufferRange) => a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
const name = (n: Node) => `%${n.id} (${n.op} ${n.dtype}[${n.shape}])`;

export function validateMemory(m: MemoryPlan): void {
  const sizes = new Map(m.buffers.map((b) => [b.id, b.size]));
  const paired = new Set(m.inPlace.map(([x, y]) => `${x.id}:${y.id}`));
  const entries = [...m.homes];
  for (const [n, r] of entries) {
    const size = sizes.get(r.buffer);
    if (size === undefined) throw new CompileError(`${name(n)} lives in buffer ${r.buffer}, which the plan does not have`, "memory plan");
    if (r.offset % m.alignment !== 0) throw new CompileError(`${name(n)} starts at byte ${r.offset}, not a multiple of ${m.alignment}`, "memory plan");
    if (r.offset + r.size > size) throw new CompileError(`${name(n)} ends at byte ${r.offset + r.size}, past its buffer's ${size}`, "memory plan");
  }
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [x, rx] = entries[i]!;
      const [y, ry] = entries[j]!;
      if (!overlaps(rx, ry)) continue;
      const lx = m.lifetimes.get(x);
      const ly = m.lifetimes.get(y);
      if (!lx || !ly || !overlapInTime(lx, ly)) continue;
      const handOver = (paired.has(`${x.id}:${y.id}`) && lx[1] === ly[0]) || (paired.has(`${y.id}:${x.id}`) && ly[1] === lx[0]);
      const sameState = rx.offset === ry.offset && rx.size === ry.size && (paired.has(`${x.id}:${y.id}`) || paired.has(`${y.id}:${x.id}`));
      if (!handOver && !sameState) {
        throw new CompileError(
          `${name(x)} (steps ${lx[0]}..${lx[1]}, bytes ${rx.offset}..${rx.offset + rx.size}) and ${name(y)} (steps ${ly[0]}..${ly[1]}, bytes ${ry.offset}..${ry.offset + ry.size}) share buffer ${rx.buffer} while both are alive`,
          "memory plan",
        );
      }
    }
  }
}

/** Every dispatch of `plan` against WebGPU's binding rules and the target's limits. */
export function validateDispatches(plan: ExecutionPlan, target: Target): void {
  const L = target.limits;
  const kernels = new Map(plan.kernels.map((k) => [k.id, k]));
  plan.steps.forEach((step, i) => {
    if (step.kind !== "dispatch") return;
    const k = kernels.get(step.kernel)!;
    const where = `step ${i} (kernel ${k.name})`;
    if (k.bindings.length > L.maxStorageBuffersPerShaderStage) throw new CompileError(`${where} binds ${k.bindings.length} storage buffers, the limit is ${L.maxStorageBuffersPerShaderStage}`, "dispatch check");
    const [x, y, z] = k.workgroupSize;
    if (x * y * z > L.maxComputeInvocationsPerWorkgroup || x > L.maxComputeWorkgroupSizeX) throw new CompileError(`${where}: workgroup size ${x}×${y}×${z} exceeds the adapter's limits`, "dispatch check");
    if (step.workgroups.some((g) => g > L.maxComputeWorkgroupsPerDimension)) throw new CompileError(`${where}: dispatch (${step.workgroups}) exceeds maxComputeWorkgroupsPerDimension ${L.maxComputeWorkgroupsPerDimension}`, "dispatch check");
    const access = new Map(k.bindings.map((b) => [b.binding, b.access]));
    for (const b of step.bindings) {
      if (b.offset % L.minStorageBufferOffsetAlignment !== 0) throw new CompileError(`${where}, binding ${b.binding}: offset ${b.offset} is not aligned to ${L.minStorageBufferOffsetAlignment}`, "dispatch check");
      if (b.size > L.maxStorageBufferBindingSize) throw new CompileError(`${where}, binding ${b.binding}: ${b.size} bytes exceed maxStorageBufferBindingSize ${L.maxStorageBufferBindingSize}`, "dispatch check");
      for (const o of step.bindings) {
        if (o === b || o.buffer !== b.buffer) continue;
        const writable = access.get(b.binding) === "read_write";
        if (writable && access.get(o.binding) === "read") throw new CompileError(`${where}: buffer ${b.buffer} is bound writable (binding ${b.binding}) and read-only (binding ${o.binding}) in one dispatch`, "dispatch check");
        if (writable && overlaps(b, o)) throw new CompileError(`${where}: writable binding ${b.binding} overlaps binding ${o.binding} in buffer ${b.buffer}`, "dispatch check");
      }
    }
  });
}
