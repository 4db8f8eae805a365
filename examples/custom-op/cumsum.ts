// A library-defined op with its own WGSL kernel: the running sum along the last axis.
//
// `cumsum` is awkward in primitives (a triangular mask and a matmul, O(n²) memory), and easy
// as a kernel: each output element loops over the elements before it. `defineOp` registers:
//   - the primitive record (as every built-in op has): shape rule, float64 reference for the
//     interpreter, and VJP rule — written in primitives and the op itself, so gradients of
//     gradients work;
//   - the kernel template: WGSL statements computing ONE output element at index i0, i1, …,
//     reading the input through x0(…). The compiler fuses elementwise producers of the input
//     into x0 (the prologue) and elementwise consumers of the result into the same kernel
//     (the epilogue).
import { DTypeError, type Emitter, type Node, type Tensor } from "@dorafuse/core";
import { defineOp } from "@dorafuse/compiler";

const OP = "examples.cumsum";

/** Σ_{j ≤ i} x[…, j] for every i of the last axis. */
function reference(x: Float64Array, shape: readonly number[]): Float64Array {
  const n = shape[shape.length - 1] ?? 1;
  const out = new Float64Array(x.length);
  for (let row = 0; row < x.length; row += n) {
    let acc = 0;
    for (let i = 0; i < n; i++) out[row + i] = acc += x[row + i]!;
  }
  return out;
}

/** The VJP: the gradient of a running sum is the reversed running sum, Σ_{j ≥ i} ct[j] = total − cumsum(ct) + ct. */
function backward(ct: Node, b: Emitter): Node {
  const last = ct.shape.length - 1;
  const total = b.emit("reduceSum", [ct], { axes: [last] });
  const spread = b.emit("broadcast", [b.emit("reshape", [total], { shape: [...ct.shape.slice(0, -1), 1] })], { shape: [...ct.shape] });
  return b.emit("add", [b.emit("sub", [spread, b.emit(OP, [ct])]), ct]);
}

const apply = defineOp({
  primitive: {
    name: OP,
    kind: "custom",
    arity: 1,
    infer: ([x]) => {
      if (x!.dtype !== "f32" && x!.dtype !== "f16") throw new DTypeError(`${OP}: expects f32 or f16, found ${x!.dtype}`, OP);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    evaluate: ([x], node) => reference(x!, node.shape),
    vjp: (ct, _node, b) => [backward(ct, b)],
  },
  kernel: {
    element: (node) => {
      const r = node.shape.length;
      const outer = Array.from({ length: r - 1 }, (_, k) => `i${k}, `).join("");
      return `
        var acc = ${node.dtype}(0.0);
        for (var j = 0u; j <= i${r - 1}; j++) {
          acc = acc + x0(${outer}j);
        }
        return acc;`;
    },
    flopsPerElement: (node) => (node.shape[node.shape.length - 1]! + 1) / 2,
  },
});

/** The running sum of `x` along its last axis (rank ≥ 1). */
export function cumsum<T extends Tensor>(x: T): T {
  return apply([x]) as T;
}
