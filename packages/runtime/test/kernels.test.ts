import { describe, expect, it } from "vitest";
import { f16ToF32, f32ToF16, kernelPlan, loadPlan, matmulPlan, run, type ExecutionPlan, type Tensor } from "@dorafuse/runtime";
import { matmulF64, relativeError } from "./compare.js";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

const VECTOR_ADD = `
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

function vectorAddPlan(n: number): ExecutionPlan {
  return kernelPlan({
    name: "vectorAdd",
    wgsl: VECTOR_ADD,
    workgroupSize: [64, 1, 1],
    workgroups: [Math.ceil(n / 64), 1, 1],
    tensors: [
      { name: "a", shape: [n], dtype: "f32", role: "input", access: "read" },
      { name: "b", shape: [n], dtype: "f32", role: "input", access: "read" },
      { name: "sum", shape: [n], dtype: "f32", role: "output", access: "read_write" },
    ],
  });
}

/** Each workgroup sums 256 elements of x (a tree in workgroup memory) into partial[workgroup]. */
const BLOCK_SUM = `
struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> scratch: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(local_invocation_index) lane: u32,
        @builtin(workgroup_id) group: vec3<u32>) {
  var value = 0.0;
  if (id.x < params.n) {
    value = x[id.x];
  }
  scratch[lane] = value;
  workgroupBarrier();
  for (var stride = 128u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      scratch[lane] = scratch[lane] + scratch[lane + stride];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    partial[group.x] = scratch[0];
  }
}
`;

const b64 = (data: ArrayBufferView) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");

/** Two dispatches of BLOCK_SUM in one plan: x → partials (scratch) → total. */
function totalSumPlan(n: number): ExecutionPlan {
  const groups = Math.ceil(n / 256);
  if (groups > 256) throw new Error("totalSumPlan: the second pass sums at most 256 partials");
  const kernel = { id: 0, name: "blockSum", wgsl: BLOCK_SUM, entryPoint: "main", workgroupSize: [256, 1, 1] as [number, number, number] };
  const bindings = [
    { binding: 0, access: "read" as const },
    { binding: 1, access: "read_write" as const },
    { binding: 2, access: "uniform" as const },
  ];
  return {
    format: "dorafuse.plan",
    version: 1,
    buffers: [
      { id: 0, size: n * 4, role: "input", label: "x" },
      { id: 1, size: groups * 4, role: "scratch", label: "partials" },
      { id: 2, size: 4, role: "output", label: "total" },
      { id: 3, size: 32, role: "constant", label: "params", data: b64(new Uint32Array([n, 0, 0, 0, groups, 0, 0, 0])) },
    ],
    kernels: [{ ...kernel, bindings }],
    steps: [
      {
        kind: "dispatch",
        kernel: 0,
        label: "partials",
        bindings: [
          { binding: 0, buffer: 0, offset: 0, size: n * 4 },
          { binding: 1, buffer: 1, offset: 0, size: groups * 4 },
          { binding: 2, buffer: 3, offset: 0, size: 16 },
        ],
        workgroups: [groups, 1, 1],
      },
      {
        kind: "dispatch",
        kernel: 0,
        label: "total",
        bindings: [
          { binding: 0, buffer: 1, offset: 0, size: groups * 4 },
          { binding: 1, buffer: 2, offset: 0, size: 4 },
          { binding: 2, buffer: 3, offset: 16, size: 16 },
        ],
        workgroups: [1, 1, 1],
      },
    ],
    inputs: [{ name: "x", buffer: 0, offset: 0, size: n * 4, shape: [n], dtype: "f32" }],
    outputs: [{ name: "total", buffer: 2, offset: 0, size: 4, shape: [], dtype: "f32" }],
  };
}

describe("kernels run through plans", () => {
  it("vector add matches the CPU", async () => {
    const rng = seededRandom();
    const n = 1000 + rng.int(0, 100);
    const a = rng.floats(n);
    const b = rng.floats(n);
    const { sum } = (await run(gpu.device, vectorAddPlan(n), { a, b })) as { sum: Float32Array };
    const ref = Float64Array.from(a, (x, i) => x + b[i]!);
    // One f32 rounding per element: the sum is exactly fround(a + b).
    expect(Array.from(sum), rng.label).toEqual(Array.from(ref, Math.fround));
  });

  it("a workgroup reduction gives each workgroup's sum", async () => {
    const rng = seededRandom();
    const n = 256 * 37 + rng.int(1, 255);
    const groups = Math.ceil(n / 256);
    const x = rng.floats(n, 0, 1);
    const plan = kernelPlan({
      name: "blockSum",
      wgsl: BLOCK_SUM,
      workgroupSize: [256, 1, 1],
      workgroups: [groups, 1, 1],
      tensors: [
        { name: "x", shape: [n], dtype: "f32", role: "input", access: "read" },
        { name: "partial", shape: [groups], dtype: "f32", role: "output", access: "read_write" },
        { name: "params", shape: [1], dtype: "u32", role: "constant", access: "uniform", data: new Uint32Array([n]), bindSize: 16 },
      ],
    });
    const { partial } = (await run(gpu.device, plan, { x })) as { partial: Float32Array };
    const ref = new Float64Array(groups);
    x.forEach((v, i) => (ref[Math.floor(i / 256)] += v));
    expect(relativeError(partial, ref), rng.label).toBeLessThan(1e-6);
  });

  it("two dispatches in one command buffer reduce a vector to its total", async () => {
    const rng = seededRandom();
    const n = 256 * 200 + rng.int(1, 255);
    const x = rng.floats(n, 0, 1);
    const { total } = (await run(gpu.device, totalSumPlan(n), { x })) as { total: Float32Array };
    const ref = x.reduce((s, v) => s + v, 0);
    expect(Math.abs(total[0]! - ref) / ref, rng.label).toBeLessThan(1e-5);
  });

  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [7, 33, 257],
    [33, 257, 7],
    [257, 7, 33],
    [257, 257, 1],
    [1, 7, 257],
    [33, 33, 33],
  ];
  for (const [m, k, n] of sizes) {
    it(`tiled matmul ${m}x${k} · ${k}x${n} matches float64 on the CPU`, async () => {
      const rng = seededRandom();
      const a = rng.floats(m * k);
      const b = rng.floats(k * n);
      const { c } = (await run(gpu.device, matmulPlan(m, k, n), { a, b })) as { c: Float32Array };
      expect(c.length).toBe(m * n);
      expect(relativeError(c, matmulF64(a, b, m, k, n)), rng.label).toBeLessThan(1e-6);
    });
  }

  it("state persists between runs and can be read and written by name", async () => {
    const rng = seededRandom();
    const n = 300;
    const initial = rng.floats(n);
    const plan = kernelPlan({
      name: "accumulate",
      wgsl: `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> total: array<f32>;
@group(0) @binding(2) var<storage, read_write> doubled: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&total)) {
    total[id.x] = total[id.x] + x[id.x];
    doubled[id.x] = 2.0 * total[id.x];
  }
}`,
      workgroupSize: [64, 1, 1],
      workgroups: [Math.ceil(n / 64), 1, 1],
      tensors: [
        { name: "x", shape: [n], dtype: "f32", role: "input", access: "read" },
        { name: "total", shape: [n], dtype: "f32", role: "state", access: "read_write", data: initial },
        { name: "doubled", shape: [n], dtype: "f32", role: "output", access: "read_write" },
      ],
    });
    const exe = await loadPlan(gpu.device, plan);
    const expected = Float32Array.from(initial);
    for (let step = 0; step < 3; step++) {
      const x = rng.floats(n);
      const result = await exe.run({ x });
      expected.forEach((v, i) => (expected[i] = Math.fround(v + x[i]!)));
      const { doubled } = (await result.readAll()) as { doubled: Float32Array };
      expect(Array.from(doubled), `${rng.label}, step ${step}`).toEqual(Array.from(expected, (v) => 2 * v));
    }
    expect(Array.from(await exe.readState("total")), rng.label).toEqual(Array.from(expected));
    const reset = rng.floats(n);
    await exe.writeState("total", reset);
    const x = rng.floats(n);
    await (await exe.run({ x })).readAll();
    expect(Array.from(await exe.readState("total")), rng.label).toEqual(Array.from(reset, (v, i) => Math.fround(v + x[i]!)));
    exe.dispose();
  });

  it("an output tensor feeds the next run without leaving the GPU", async () => {
    const rng = seededRandom();
    const [m, k, n] = [9, 13, 11];
    const a = rng.floats(m * k);
    const b = rng.floats(k * n);
    const bias = rng.floats(m * n);
    const product = await (await loadPlan(gpu.device, matmulPlan(m, k, n))).run({ a, b });
    const add = await loadPlan(gpu.device, vectorAddPlan(m * n));
    const flat = product.outputs.c!;
    // The vector-add plan wants f32[99]; the matmul output is f32[9,11], so reshape through a host-free copy.
    const { sum } = (await (await add.run({ a: await reshaped(flat, [m * n]), b: bias })).readAll()) as { sum: Float32Array };
    const ref = matmulF64(a, b, m, k, n).map((v, i) => v + bias[i]!);
    expect(relativeError(sum, ref), rng.label).toBeLessThan(1e-6);
  });

  it("copy and write steps land between the dispatches around them", async () => {
    const rng = seededRandom();
    const n = 64;
    const bytes = n * 4;
    const x = rng.floats(n);
    const bias1 = rng.floats(n);
    const bias2 = rng.floats(n);
    const add = vectorAddPlan(n).kernels[0]!;
    const dispatchInto = (out: number) => ({
      kind: "dispatch" as const,
      kernel: 0,
      bindings: [
        { binding: 0, buffer: 0, offset: 0, size: bytes },
        { binding: 1, buffer: 1, offset: 0, size: bytes },
        { binding: 2, buffer: out, offset: 0, size: bytes },
      ],
      workgroups: [1, 1, 1] as [number, number, number],
    });
    const range = (buffer: number) => ({ buffer, offset: 0, size: bytes });
    const plan: ExecutionPlan = {
      format: "dorafuse.plan",
      version: 1,
      buffers: [0, 1, 2, 3, 4].map((id) => ({ id, size: bytes, role: id === 0 ? "input" : id === 1 ? "scratch" : "output" })),
      kernels: [add],
      steps: [
        { kind: "write", dst: range(1), data: b64(bias1) },
        dispatchInto(2),
        { kind: "copy", src: range(2), dst: range(3) },
        { kind: "write", dst: range(1), data: b64(bias2) },
        dispatchInto(4),
      ],
      inputs: [{ name: "x", ...range(0), shape: [n], dtype: "f32" }],
      outputs: ["first", "copied", "second"].map((name, i) => ({ name, ...range(2 + i), shape: [n], dtype: "f32" as const })),
    };
    const out = (await run(gpu.device, plan, { x })) as Record<string, Float32Array>;
    const first = Array.from(x, (v, i) => Math.fround(v + bias1[i]!));
    expect(Array.from(out.first!), rng.label).toEqual(first);
    expect(Array.from(out.copied!), rng.label).toEqual(first);
    expect(Array.from(out.second!), rng.label).toEqual(Array.from(x, (v, i) => Math.fround(v + bias2[i]!)));
  });

  it("f16 and bool tensors cross to and from the GPU", async () => {
    const rng = seededRandom();
    const n = 101;
    const x = f32ToF16(rng.floats(n, -4, 4));
    const mask = Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0));
    const plan = kernelPlan({
      name: "halfAndMask",
      wgsl: `
enable f16;

@group(0) @binding(0) var<storage, read> x: array<f16>;
@group(0) @binding(1) var<storage, read> mask: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f16>;
@group(0) @binding(3) var<storage, read_write> positive: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&mask)) {
    y[id.x] = select(-x[id.x], x[id.x] * 2.0h + 1.0h, mask[id.x] != 0u);
    positive[id.x] = u32(x[id.x] > 0.0h);
  }
}`,
      workgroupSize: [64, 1, 1],
      workgroups: [2, 1, 1],
      tensors: [
        { name: "x", shape: [n], dtype: "f16", role: "input", access: "read" },
        { name: "mask", shape: [n], dtype: "bool", role: "input", access: "read" },
        { name: "y", shape: [n], dtype: "f16", role: "output", access: "read_write" },
        { name: "positive", shape: [n], dtype: "bool", role: "output", access: "read_write" },
      ],
    });
    const out = await run(gpu.device, plan, { x, mask });
    const xs = f16ToF32(x);
    const y = f16ToF32(out.y as Uint16Array);
    xs.forEach((v, i) => {
      const ref = mask[i] ? v * 2 + 1 : -v;
      // One f16 rounding: within half an f16 ulp (2^-11 relative).
      expect(Math.abs(y[i]! - ref), `${rng.label}, element ${i}`).toBeLessThanOrEqual(Math.abs(ref) * 2 ** -11);
    });
    expect(out.positive).toBeInstanceOf(Uint8Array);
    expect(Array.from(out.positive!), rng.label).toEqual(Array.from(xs, (v) => (v > 0 ? 1 : 0)));
  });
});

/** The same bytes as a tensor of another shape, copied on the GPU through a one-step plan. */
async function reshaped(t: Tensor, shape: number[]) {
  const bytes = t.byteLength;
  const plan: ExecutionPlan = {
    format: "dorafuse.plan",
    version: 1,
    buffers: [
      { id: 0, size: bytes, role: "input" },
      { id: 1, size: bytes, role: "output" },
    ],
    kernels: [],
    steps: [{ kind: "copy", src: { buffer: 0, offset: 0, size: bytes }, dst: { buffer: 1, offset: 0, size: bytes } }],
    inputs: [{ name: "in", buffer: 0, offset: 0, size: bytes, shape: [...t.shape], dtype: t.dtype }],
    outputs: [{ name: "out", buffer: 1, offset: 0, size: bytes, shape, dtype: t.dtype }],
  };
  return (await (await loadPlan(t.device, plan)).run({ in: t })).outputs.out!;
}
