import { describe, expect, it } from "vitest";
import { kernelPlan, loadPlan, PlanError, upload, type ExecutionPlan } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

const ADD = `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&sum)) {
    sum[id.x] = a[id.x] + b[id.x];
  }
}
`;

function addPlan(n = 64): ExecutionPlan {
  return kernelPlan({
    name: "add",
    wgsl: ADD,
    workgroupSize: [64, 1, 1],
    workgroups: [Math.ceil(n / 64), 1, 1],
    tensors: [
      { name: "a", shape: [n], dtype: "f32", role: "input", access: "read" },
      { name: "b", shape: [n], dtype: "f32", role: "input", access: "read" },
      { name: "sum", shape: [n], dtype: "f32", role: "output", access: "read_write" },
    ],
  });
}

/** A copy of the add plan changed by `edit`. */
function broken(edit: (plan: ExecutionPlan) => void): ExecutionPlan {
  const plan = structuredClone(addPlan());
  edit(plan);
  return plan;
}

async function loadError(plan: ExecutionPlan): Promise<Error> {
  const live = gpu.device.memory.liveBuffers;
  const error = await loadPlan(gpu.device, plan).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PlanError);
  // Nothing was allocated for a plan that fails validation.
  expect(gpu.device.memory.liveBuffers).toBe(live);
  return error as Error;
}

describe("plans are checked against their shaders and the device", () => {
  it("a binding the shader does not declare names the kernel and binding", async () => {
    const error = await loadError(
      broken((p) => {
        p.kernels[0]!.bindings.push({ binding: 3, access: "read" });
        p.steps[0]!.kind === "dispatch" && p.steps[0]!.bindings.push({ binding: 3, buffer: 0, offset: 0, size: 256 });
      }),
    );
    expect(error.message).toBe(
      'kernel "add" (id 0), binding 3: the plan binds it as read, but the WGSL declares no @group(0) @binding(3); it declares bindings [0 (a), 1 (b), 2 (sum)]',
    );
  });

  it("an access kind that disagrees with the shader names both", async () => {
    const error = await loadError(broken((p) => (p.kernels[0]!.bindings[2]!.access = "read")));
    expect(error.message).toBe('kernel "add" (id 0), binding 2 ("sum"): the plan says read, the WGSL declares "@group(0) @binding(2) var<storage, read_write> sum" (read_write)');
  });

  it("a plan with fewer bindings than the shader names the missing one and both counts", async () => {
    const error = await loadError(
      broken((p) => {
        p.kernels[0]!.bindings.pop();
        if (p.steps[0]!.kind === "dispatch") p.steps[0]!.bindings.pop();
      }),
    );
    expect(error.message).toMatch(/^kernel "add" \(id 0\), binding 2 \("sum"\): the WGSL declares ".*" but the plan lists no binding 2 \(the plan has 2 bindings, the WGSL 3\)$/);
  });

  it("a dispatch that binds other bindings than its kernel's names the step", async () => {
    const error = await loadError(broken((p) => p.steps[0]!.kind === "dispatch" && p.steps[0]!.bindings.splice(1, 1)));
    expect(error.message).toBe('step 0 "add" (dispatch of kernel "add"): the kernel has bindings [0, 1, 2], the step binds [0, 2]');
  });

  it("a missing entry point and a disagreeing workgroup size are named", async () => {
    expect((await loadError(broken((p) => (p.kernels[0]!.entryPoint = "forward")))).message).toBe(
      'kernel "add" (id 0): the plan names entry point "forward", the WGSL has @compute entry points [main]',
    );
    expect((await loadError(broken((p) => (p.kernels[0]!.workgroupSize = [32, 1, 1])))).message).toBe(
      'kernel "add" (id 0): the plan says workgroup size (32, 1, 1), the WGSL says @workgroup_size(64, 1, 1)',
    );
  });

  it("a writable binding aliasing another one is refused", async () => {
    const error = await loadError(broken((p) => p.steps[0]!.kind === "dispatch" && (p.steps[0]!.bindings[2]!.buffer = 0)));
    expect(error.message).toMatch(/binding 2 is writable and overlaps binding 0 \(buffer 0\); WebGPU forbids aliasing a writable binding/);
  });

  it("ranges past a buffer's end and misaligned offsets are refused", async () => {
    expect((await loadError(broken((p) => (p.outputs[0]!.size = 512)))).message).toBe('output "sum": bytes 0..512 of buffer 2 lie past its end (256 bytes)');
    const misaligned = await loadError(
      broken((p) => {
        p.buffers[0]!.size = 512;
        if (p.steps[0]!.kind === "dispatch") p.steps[0]!.bindings[0]!.offset = 4;
      }),
    );
    expect(misaligned.message).toMatch(/binding 0: offset 4 is not a multiple of this device's minStorageBufferOffsetAlignment \(\d+\)/);
  });

  it("limits and features the device lacks are named with both values", async () => {
    const max = gpu.device.limits.maxComputeWorkgroupStorageSize!;
    expect((await loadError(broken((p) => (p.requiredLimits = { maxComputeWorkgroupStorageSize: max * 2 })))).message).toBe(
      `the plan was built for maxComputeWorkgroupStorageSize = ${max * 2}, this device has maxComputeWorkgroupStorageSize = ${max}`,
    );
    expect((await loadError(broken((p) => (p.requiredFeatures = ["texture-compression-astc"])))).message).toMatch(
      /^the plan needs the features \[texture-compression-astc\], which this device does not have/,
    );
  });

  it("run() names missing, unknown and mistyped inputs", async () => {
    const rng = seededRandom();
    const exe = await loadPlan(gpu.device, addPlan());
    const a = rng.floats(64);
    await expect(exe.run({ a })).rejects.toThrow('run() is missing input "b" (f32[64])');
    await expect(exe.run({ a, b: a, c: a })).rejects.toThrow('run() got input "c", which the plan does not have; its inputs are [a, b]');
    await expect(exe.run({ a, b: new Int32Array(64) })).rejects.toThrow('tensor "b" is f32[64]: expected a Float32Array, found a Int32Array');
    await expect(exe.run({ a, b: rng.floats(63) })).rejects.toThrow('tensor "b" is f32[64]: expected 64 elements, found 63');
    const wrongShape = upload(gpu.device, rng.floats(64), { shape: [8, 8] });
    await expect(exe.run({ a, b: wrongShape })).rejects.toThrow('input "b" must be f32[64], found a tensor f32[8,8]');
    exe.dispose();
  });

  it("a WebGPU validation error during a run comes back as a PlanError and the device stays usable", async () => {
    // The shader reads vec4s but the plan binds 4 bytes: only Dawn can see that (minimum binding size).
    const plan = kernelPlan({
      name: "vec4Reader",
      wgsl: `@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = x[0].x; }`,
      workgroupSize: [1, 1, 1],
      workgroups: [1, 1, 1],
      tensors: [
        { name: "x", shape: [1], dtype: "f32", role: "input", access: "read" },
        { name: "y", shape: [1], dtype: "f32", role: "output", access: "read_write" },
      ],
    });
    const exe = await loadPlan(gpu.device, plan);
    const error = await exe.run({ x: new Float32Array([1]) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlanError);
    expect((error as Error).message).toMatch(/^running the plan failed WebGPU validation:\n.*"vec4Reader".*at least 16 bytes/s);
    expect(() => gpu.device.check()).not.toThrow();
    exe.dispose();
  });
});
