// DType groups the typed API restricts ops to, mirroring the primitives' dtype classes.
import type { DType } from "../ir/dtype.js";

export type FloatDType = "f32" | "f16";
export type IntDType = "i32" | "u32";
export type NumericDType = FloatDType | IntDType;
export type { DType };
