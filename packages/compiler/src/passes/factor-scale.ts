// Factoring a scale out of a contraction: Σ_k (s_i · a_ik) · b_kj = s_i · Σ_k a_ik · b_kj when
// s does not vary along k. A row scale of the left operand (RMSNorm's 1/rms, a row norm) or a
// column scale of the right (weight normalisation's g/‖v‖, an output gate) then multiplies
// the product's result, once per output element, instead of every operand element once per
// tile that stages it — and the scale's own computation (a reduction over the same k) can
// join the contraction's kernel as an extra output of its loop (fusion/contraction.ts).
//
// The operand may be a product of several factors (x ⊙ r ⊙ γ), seen through a transpose (a
// weight used as Wᵀ) or a reshape that regroups leading axes (a [batch, seq, in] input); a
// factor is a scale when it is a broadcast of a tensor of size 1 along k (or a scalar).
import { sameShape, type GraphBuilder, type Node } from "@dorafuse/core";
import type { Rule } from "./rewrite.js";

/** The factors of a product (through nested multiplications). */
function factorsOf(n: Node, out: Node[] = []): Node[] {
  if (n.op === "mul") for (const x of n.inputs) factorsOf(x, out);
  else out.push(n);
  return out;
}

const product = (b: GraphBuilder, xs: readonly Node[]): Node => xs.reduce((p, x) => b.emit("mul", [p, x]));

/** `x` as `shape`, looking through a reshape it already is (nodes a rule builds are not simplified again). */
function reshaped(b: GraphBuilder, x: Node, shape: readonly number[]): Node {
  const src = x.op === "reshape" ? x.inputs[0]! : x;
  return sameShape(src.shape, shape) ? src : b.emit("reshape", [src], { shape: [...shape] });
}

/**
 * A factor that does not vary along axis `k` of its shape: its source as one value per
 * index of the other axis of a matrix ([rows]), or undefined.
 */
function scaleAlong(b: GraphBuilder, f: Node, k: number): Node | undefined {
  if (f.op !== "broadcast" || f.shape.length !== 2) return undefined;
  const src = f.inputs[0]!;
  const off = f.shape.length - src.shape.length;
  // the source's dimension aligned with k is 1 (or absent): the broadcast repeats it along k
  if (k - off >= 0 && src.shape[k - off] !== 1) return undefined;
  const other = 1 - k;
  const full = src.shape.length === 2 ? src : b.emit("broadcast", [src], { shape: f.shape.map((d, i) => (i === k ? 1 : d)) });
  return reshaped(b, full, [f.shape[other]!]);
}

/**
 * A 2-D operand as (the operand without its scales, the scales along its non-k axis), seeing
 * through one transpose. `k` is the contraction axis of the operand as the matmul reads it.
 */
function splitScales(b: GraphBuilder, x: Node, k: number): { rest: Node; scales: Node[] } | undefined {
  const transposed = x.op === "transpose" && x.shape.length === 2 && (x.attrs.perm as number[])[0] === 1;
  const inner = transposed ? x.inputs[0]! : x;
  if (inner.op !== "mul") return undefined;
  const axis = transposed ? 1 - k : k;
  const scales: Node[] = [];
  const rest: Node[] = [];
  for (const f of factorsOf(inner)) {
    const s = scaleAlong(b, f, axis);
    if (s) scales.push(s);
    else rest.push(f);
  }
  if (scales.length === 0 || rest.length === 0) return undefined;
  const r = product(b, rest);
  return { rest: transposed ? b.emit("transpose", [r], { perm: [1, 0] }) : r, scales };
}

/** The left operand through a reshape that only regroups its leading axes into rows. */
function leftScales(b: GraphBuilder, a: Node): { rest: Node; scales: Node[] } | undefined {
  if (a.op !== "reshape") return splitScales(b, a, 1);
  const x = a.inputs[0]!;
  const kDim = a.shape[1]!;
  if (x.shape[x.shape.length - 1] !== kDim || x.op !== "mul") return undefined;
  // view x as [rows, k], factor there, and regroup the scales the same way
  const rows = a.shape[0]!;
  const flat = (n: Node) => reshaped(b, n, [rows, kDim]);
  const factors = factorsOf(x).map((f) => (f.op === "broadcast" && f.inputs[0]!.shape.at(-1) === 1 && f.inputs[0]!.shape.length === f.shape.length
    ? b.emit("broadcast", [reshaped(b, f.inputs[0]!, [rows, 1])], { shape: [rows, kDim] })
    : flat(f)));
  return splitScales(b, product(b, factors), 1);
}

export const factorScaleRule: Rule = (n, b) => {
  if (n.op !== "matmul" || n.shape.length !== 2) return undefined;
  const [a, c] = n.inputs as [Node, Node];
  const left = leftScales(b, a);
  const right = splitScales(b, c, 0);
  if (!left && !right) return undefined;
  const [m, cols] = n.shape as [number, number];
  const y = b.emit("matmul", [left?.rest ?? a, right?.rest ?? c], {}, n.site);
  const rowScale = (left?.scales ?? []).map((s) => b.emit("broadcast", [reshaped(b, s, [m, 1])], { shape: [m, cols] }));
  const colScale = (right?.scales ?? []).map((s) => b.emit("broadcast", [s], { shape: [m, cols] }));
  return product(b, [y, ...rowScale, ...colScale]);
};
