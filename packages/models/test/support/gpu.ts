// The GPU side of the models tests: one device per file (the compiler's fixture), parameter
// trees moved onto it once, and the comparisons every test makes.
import { flatten, HostTensor, unflatten } from "@dorafuse/core";
import { f32ToF16, upload, type Device, type Tensor as GpuTensor } from "@dorafuse/runtime";
export { useDevice } from "../../../compiler/test/support/device.js";
export { relErr } from "../../../core/test/support/numeric.js";
export { Rng, testSeed, withSeed } from "../../../core/test/support/random.js";

/** A tree of host tensors as GPU tensors (f16 leaves stay f16). */
export function toDevice<T>(tree: T, device: Device): T {
  const [leaves, def] = flatten(tree, (v): v is HostTensor => v instanceof HostTensor);
  return unflatten(def, leaves.map((t, i) => upload(device, t.dtype === "f16" ? f32ToF16(t.data) : t.dtype === "i32" ? Int32Array.from(t.data) : Float32Array.from(t.data), { shape: t.shape, dtype: t.dtype as never, name: `leaf${i}` })));
}

/** Reads a GPU tensor back as float64 values. */
export async function read(t: unknown): Promise<Float64Array> {
  return Float64Array.from((await (t as GpuTensor).read()) as Float32Array);
}
