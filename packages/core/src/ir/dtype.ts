/** Element types of tensors. `bool` is stored as u32 (0/1) on the GPU. */
export type DType = "f32" | "f16" | "i32" | "u32" | "bool";

export const DTYPES: readonly DType[] = ["f32", "f16", "i32", "u32", "bool"];

export const isFloat = (d: DType): boolean => d === "f32" || d === "f16";
export const isInteger = (d: DType): boolean => d === "i32" || d === "u32";

/** Bytes per element as stored in GPU buffers and safetensors (bool as u32). */
export const byteSize = (d: DType): number => (d === "f16" ? 2 : 4);
