// A streaming copy kernel (vec4 loads and stores) and the plan that runs it: the doctor's
// and the benchmark's probe of memory bandwidth.

import type { ExecutionPlan } from "../plan.js";
import { kernelPlan } from "./kernel-plan.js";
import { fillTemplate, u32 } from "./template.js";

const COPY_WGSL = `// dorafuse runtime kernel "copy": dst = src, one vec4<f32> per invocation; the grid
// is 2-D when one dimension cannot hold it.
const WORKGROUP = {{WORKGROUP}};

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = id.x + id.y * groups.x * WORKGROUP;
  if (index < arrayLength(&dst)) {
    dst[index] = src[index];
  }
}
`;

const WORKGROUP = 256;

/** Workgroup counts for `count` workgroups on a grid of at most `maxPerDimension` per side. */
export function grid2d(count: number, maxPerDimension = 65535): [number, number, number] {
  const x = Math.min(count, maxPerDimension);
  return [x, Math.ceil(count / x), 1];
}

/** A plan copying input "src" (f32[floats]) to output "dst"; `floats` must be a multiple of 4. */
export function copyPlan(floats: number): ExecutionPlan {
  if (!Number.isSafeInteger(floats) || floats <= 0 || floats % 4 !== 0) throw new RangeError(`copyPlan: floats must be a positive multiple of 4, found ${floats}`);
  return kernelPlan({
    name: "copy",
    wgsl: fillTemplate("copy", COPY_WGSL, { WORKGROUP: u32(WORKGROUP) }),
    workgroupSize: [WORKGROUP, 1, 1],
    workgroups: grid2d(Math.ceil(floats / 4 / WORKGROUP)),
    tensors: [
      { name: "src", shape: [floats], dtype: "f32", role: "input", access: "read" },
      { name: "dst", shape: [floats], dtype: "f32", role: "output", access: "read_write" },
    ],
    flops: 0,
    bytes: 2 * floats * 4,
  });
}
