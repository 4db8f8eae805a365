// Counter-based random numbers; interpreter and GPU agree bit for bit.
// randomBits {shape}: key u32[2] → u32[shape]; element at flat index i is word 0 of
//   threefry2x32(key, (i, 0)). The frontend builds uniform/normal/bernoulli from these bits.
// threefry2x32: (key u32[2], counters u32[..., 2]) → u32[..., 2], the block cipher applied to
//   each counter pair: `foldIn(key, data)` with traced data, and key splitting, need it.
import type { Primitive } from "../ir/primitive.js";
import { DTypeError, ShapeError } from "../errors.js";
import { checkShape, fmtShape, sizeOf } from "../ir/shapes.js";
import { threefry2x32, THREEFRY_WGSL } from "../random/threefry.js";

export const randomBits: Primitive<{ shape: number[] }> = {
  name: "randomBits",
  kind: "random",
  arity: 1,
  infer: ([key], a) => {
    if (key!.dtype !== "u32") throw new DTypeError(`randomBits: key must be u32[2], found ${key!.dtype}${fmtShape(key!.shape)}`, "randomBits");
    if (key!.shape.length !== 1 || key!.shape[0] !== 2) {
      throw new ShapeError(`randomBits: key must be u32[2], found u32${fmtShape(key!.shape)}`, "randomBits");
    }
    checkShape("randomBits", a.shape);
    if (sizeOf(a.shape) > 2 ** 32) throw new ShapeError(`randomBits: ${fmtShape(a.shape)} has more elements than a u32 counter covers`, "randomBits");
    return { shape: [...a.shape], dtype: "u32" };
  },
  evaluate: ([key], node) => {
    const n = sizeOf(node.shape);
    const out = new Float64Array(n);
    const k0 = key![0]!;
    const k1 = key![1]!;
    for (let i = 0; i < n; i++) out[i] = threefry2x32(k0, k1, i, 0)[0];
    return out;
  },
  vjp: () => [null],
  wgslFunctions: THREEFRY_WGSL,
};

export const threefry: Primitive = {
  name: "threefry2x32",
  kind: "random",
  arity: 2,
  infer: ([key, ctr]) => {
    if (key!.dtype !== "u32" || key!.shape.length !== 1 || key!.shape[0] !== 2) {
      throw new ShapeError(`threefry2x32: key must be u32[2], found ${key!.dtype}${fmtShape(key!.shape)}`, "threefry2x32");
    }
    if (ctr!.dtype !== "u32" || ctr!.shape[ctr!.shape.length - 1] !== 2) {
      throw new ShapeError(`threefry2x32: counters must be u32[..., 2], found ${ctr!.dtype}${fmtShape(ctr!.shape)}`, "threefry2x32");
    }
    return { shape: [...ctr!.shape], dtype: "u32" };
  },
  evaluate: ([key, ctr]) => {
    const out = new Float64Array(ctr!.length);
    for (let i = 0; i < out.length; i += 2) {
      const [a, b] = threefry2x32(key![0]!, key![1]!, ctr![i]!, ctr![i + 1]!);
      out[i] = a;
      out[i + 1] = b;
    }
    return out;
  },
  vjp: () => [null, null],
  wgslFunctions: THREEFRY_WGSL,
};
