// What a step takes for its batch: a tree whose leaves are the frontend's HostTensors, GPU
// tensors, or ShapedArrays ({ shape, data }), turned into the form the runtime checks and
// runs (ShapedArrays and GPU tensors).
import { HostTensor, type DType } from "@dorafuse/core";
import { Tensor as GpuTensor, type ShapedArray } from "@dorafuse/runtime";
import { toHostArray } from "../host.js";

/** A batch tree as a step accepts it (shapes and dtypes are checked when it runs). */
export type BatchInput<B> = B extends { readonly __type: { readonly dtype: DType } }
  ? HostTensor | GpuTensor | ShapedArray
  : B extends readonly unknown[]
    ? { [K in keyof B]: BatchInput<B[K]> }
    : B extends object
      ? { [K in keyof B]: BatchInput<B[K]> }
      : B;

const isShaped = (v: unknown): v is ShapedArray =>
  typeof v === "object" && v !== null && Array.isArray((v as ShapedArray).shape) && ArrayBuffer.isView((v as ShapedArray).data);

export function toShaped(tree: unknown): unknown {
  if (tree instanceof HostTensor) return { shape: [...tree.shape], data: toHostArray(tree.dtype, tree.data) };
  if (tree instanceof GpuTensor || isShaped(tree)) return tree;
  if (Array.isArray(tree)) return tree.map(toShaped);
  if (typeof tree === "object" && tree !== null) return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, toShaped(v)]));
  return tree;
}
