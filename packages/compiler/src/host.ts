// Moving tensors between the frontend's host form (HostTensor: float64 data for every dtype)
// and the runtime's (typed arrays: Float32Array, half bits in a Uint16Array, Int32Array, …).
import { HostTensor, type DType } from "@dorafuse/core";
import { f16ToF32, f32ToF16, fileDType, type HostArray, type HostTensor as FileTensor } from "@dorafuse/runtime";

export function toHostArray(dtype: DType, values: ArrayLike<number>): HostArray {
  switch (dtype) {
    case "f32":
      return Float32Array.from(values);
    case "f16":
      return f32ToF16(values);
    case "i32":
      return Int32Array.from(values);
    case "u32":
      return Uint32Array.from(values);
    case "bool":
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
  }
}

export function fromHostArray(dtype: DType, shape: readonly number[], data: HostArray): HostTensor {
  const values = dtype === "f16" ? Float64Array.from(f16ToF32(data as Uint16Array)) : Float64Array.from(data as ArrayLike<number>);
  return new HostTensor([...shape], values, dtype);
}

/** A host tensor as a safetensors tensor (for checkpoints and exported models). */
export function toFileTensor(h: HostTensor): FileTensor {
  return { dtype: fileDType(h.dtype)!, shape: [...h.shape], data: toHostArray(h.dtype, h.data) };
}
