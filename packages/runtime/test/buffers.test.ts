import { describe, expect, it } from "vitest";
import { allocateTensor, BufferError, bucketSize, DeviceError, f32ToF16, kernelPlan, loadPlan, PlanError, upload } from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom } from "./random.js";

const gpu = useDevice();

describe("buffers", () => {
  it("round-trips every plan dtype bit for bit, odd lengths included", async () => {
    const rng = seededRandom();
    const { device } = gpu;
    const n = 2 * rng.int(10, 100) + 1;
    const raw = (Array: { new (buffer: ArrayBuffer): ArrayBufferView }, bytes: number) => new Array(rng.bytes(n * bytes).buffer);
    const cases = {
      f32: raw(Float32Array, 4) as Float32Array,
      f16: f32ToF16(rng.floats(n, -100, 100)),
      i32: raw(Int32Array, 4) as Int32Array,
      u32: raw(Uint32Array, 4) as Uint32Array,
      bool: Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0)),
    };
    for (const [dtype, data] of Object.entries(cases)) {
      const t = upload(device, data, { dtype: dtype as keyof typeof cases, name: dtype });
      const back = await t.read();
      expect(back.constructor, dtype).toBe(data.constructor);
      expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(data.buffer, data.byteOffset, data.byteLength)), `${dtype}, ${rng.label}`).toBe(true);
      t.dispose();
    }
  });

  it("an empty tensor uploads and reads back as an empty array", async () => {
    const t = upload(gpu.device, new Float32Array(0), { shape: [0, 3] });
    expect(t.size).toBe(0);
    const back = await t.read();
    expect(back).toBeInstanceOf(Float32Array);
    expect(back.length).toBe(0);
    t.dispose();
  });

  it("writes into a tensor and reads the new contents", async () => {
    const rng = seededRandom();
    const t = upload(gpu.device, rng.floats(33), { shape: [3, 11] });
    const next = rng.floats(33);
    t.write(next);
    expect(Array.from(await t.read()), rng.label).toEqual(Array.from(next));
    expect(() => t.write(new Float32Array(5))).toThrow(/f32\[3,11\]: expected 33 elements, found 5/);
    expect(() => t.write(new Int32Array(33) as unknown as Float32Array)).toThrow(/expected a Float32Array, found a Int32Array/);
    t.dispose();
  });

  it("pools buffers by size class and counts live buffers and bytes", () => {
    const { device } = gpu;
    device.pool.clear();
    const before = device.memory;
    const a = allocateTensor(device, [1000], "f32", "a");
    const afterOne = device.memory;
    expect(afterOne.liveBuffers).toBe(before.liveBuffers + 1);
    expect(afterOne.liveBytes).toBe(before.liveBytes + bucketSize(4000));
    a.dispose();
    expect(device.memory.pooledBuffers).toBe(before.pooledBuffers + 1);
    expect(device.memory.liveBuffers).toBe(afterOne.liveBuffers);
    // 3900 bytes falls in the same class as 4000: the pooled buffer comes back.
    const hits = device.pool.hits;
    const b = allocateTensor(device, [975], "f32", "b");
    expect(b.buffer).toBe(a.buffer);
    expect(device.pool.hits).toBe(hits + 1);
    b.dispose();
    device.pool.clear();
    expect(device.memory.liveBuffers).toBe(before.liveBuffers);
    expect(device.memory.liveBytes).toBe(before.liveBytes);
    expect(device.memory.peakBytes).toBeGreaterThanOrEqual(afterOne.liveBytes);
  });

  it("size classes waste at most a quarter", () => {
    for (let size = 1; size < 1 << 22; size = Math.ceil(size * 1.37)) {
      const bucket = bucketSize(size);
      expect(bucket).toBeGreaterThanOrEqual(size);
      if (size > 256) expect(bucket / size, `size ${size}`).toBeLessThanOrEqual(1.25);
    }
    expect(bucketSize(1000)).toBe(bucketSize(1024));
  });

  it("refuses a buffer over maxBufferSize, naming both sizes", async () => {
    const { device } = gpu;
    const max = device.limits.maxBufferSize!;
    const floats = Math.floor(max / 4) + 1024;
    expect(() => allocateTensor(device, [floats], "f32", "huge")).toThrow(BufferError);
    expect(() => allocateTensor(device, [floats], "f32", "huge")).toThrow(new RegExp(`"huge" needs ${bucketSize(floats * 4)} bytes, more than this device's maxBufferSize of ${max} bytes`));
    // The same limit is checked when a plan is loaded, before anything is allocated.
    const live = device.memory.liveBuffers;
    const plan = kernelPlan({
      name: "fill",
      wgsl: "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(1) fn main() { x[0] = 1.0; }",
      workgroupSize: [1, 1, 1],
      workgroups: [1, 1, 1],
      tensors: [{ name: "x", shape: [floats], dtype: "f32", role: "output", access: "read_write" }],
    });
    const error = await loadPlan(device, plan).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PlanError);
    expect((error as Error).message).toMatch(new RegExp(`buffer 0 \\("x"\\) needs ${floats * 4} bytes, more than this device's maxBufferSize of ${max} bytes`));
    expect(device.memory.liveBuffers).toBe(live);
  });

  it("reading a disposed tensor is a BufferError", async () => {
    const t = upload(gpu.device, new Float32Array([1, 2, 3]), { name: "gone" });
    t.dispose();
    await expect(t.read()).rejects.toThrow(BufferError);
    await expect(t.read()).rejects.toThrow(/cannot read tensor "gone" f32\[3\]: it was disposed/);
  });

  it("reading a buffer destroyed behind the runtime's back is a BufferError quoting Dawn", async () => {
    const t = upload(gpu.device, new Float32Array([1, 2, 3]), { name: "destroyed" });
    t.buffer.destroy();
    const error = await t.read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BufferError);
    expect((error as Error).message).toMatch(/cannot read tensor "destroyed" f32\[3\]: its GPU buffer was destroyed/);
    expect((error as Error).message).toMatch(/Dawn said: .*destroyed/s);
    // The error was caught by a scope: the device is still usable.
    const ok = upload(gpu.device, new Float32Array([4, 5]));
    expect(Array.from(await ok.read())).toEqual([4, 5]);
    expect(() => gpu.device.check()).not.toThrow();
    expect(error).toBeInstanceOf(DeviceError);
  });
});
