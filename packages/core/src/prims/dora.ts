// The fused DoRA layer as primitives, so the compiler can run it as one forward kernel and two
// backward kernels (packages/compiler/src/dora) while the interpreter stays the oracle. The
// compiler's DoRA rewrite replaces the composite that `doraLinear.apply` (or a hand-written
// equivalent) traces with `doraLinear`; its VJP rule emits the fused backward. Math and
// conventions: DESIGN.md "DoRA, precisely" — W (out, in), A (r, in), B (out, r), m (out),
//   n² = ‖W‖²_row + 2s·rowsum((W·Aᵀ)⊙B) + s²·rowsum((B·(A·Aᵀ))⊙B),  n = √(max(n², 0) + ε),
//   g = m / n,  y = (x·Wᵀ + b) + ((g − 1)⊙(x'·Wᵀ) + g⊙(s·(x'·Aᵀ)·Bᵀ)),  x' = dropout(x).
//
//   doraLinear   [x, W, A, B, m, bias?, key?, stats?] → y [..., out], or with `save` the packed
//                forward state [y | u | n² | x'·Aᵀ | W·Aᵀ | A·Aᵀ] (u = x'·Wᵀ + s·x'·Aᵀ·Bᵀ;
//                the last two only when the norm is differentiated). `stats`: n² and x'·Aᵀ
//                come from a doraStats input (the compiler's two-dispatch schedule).
//   doraStats    [x, W, A, B, key?] → [n² | x'·Aᵀ | W·Aᵀ | A·Aᵀ]
//   doraGradRows [gy, save, B, m] → [gz·B | dB | dm | c | gz]   (gz = gy⊙g; c = ∂n/n, norm differentiated)
//   doraGradCols [gy, save, rows, x, W, A, B, m, key?] → [dx | dA]
// Packed outputs are flat f32 vectors; `doraLayout` gives the offsets.
import type { Emitter, Primitive, TypeInfo } from "../ir/primitive.js";
import type { Attrs, Node } from "../ir/node.js";
import { DTypeError, ShapeError, TraceError } from "../errors.js";
import { fmtShape, sizeOf } from "../ir/shapes.js";
import { randomBitsReference } from "../random/threefry.js";

export interface DoraAttrs {
  /** s = alpha / r (or alpha / √r). */
  readonly scale: number;
  /** Added to the (clamped) n² before the square root: the zero-row guard. */
  readonly eps: number;
  /** n² is clamped at 0 before ε is added (the factored sum can round below zero). */
  readonly clamp: boolean;
  /** Dropout rate on the adapter's input; > 0 needs a key input. */
  readonly rate: number;
  /** The norm is a constant in the backward (PEFT; the paper's §4.3). */
  readonly detach: boolean;
  /** A bias input follows m. */
  readonly bias: boolean;
  /** doraLinear: output the packed forward state instead of y. */
  readonly save?: boolean;
  /** doraLinear: the last input is the layer's doraStats. */
  readonly stats?: boolean;
}

/** The sizes of a DoRA layer and the offsets of every packed output. */
export interface DoraLayout {
  n: number; inDim: number; out: number; rank: number;
  save: { y: number; u: number; n2: number; xa: number; wa: number; aa: number; size: number };
  stats: { n2: number; xa: number; wa: number; aa: number; size: number };
  rows: { gzb: number; db: number; dm: number; c: number; gz: number; size: number };
  cols: { dx: number; da: number; size: number };
}

export function doraLayout(n: number, inDim: number, out: number, rank: number, detach: boolean): DoraLayout {
  const extra = detach ? 0 : out * rank + rank * rank;
  const yu = n * out;
  const st = { n2: 0, xa: out, wa: out + n * rank, aa: out + n * rank + out * rank, size: out + n * rank + extra };
  return {
    n, inDim, out, rank,
    save: { y: 0, u: yu, n2: 2 * yu, xa: 2 * yu + st.xa, wa: 2 * yu + st.wa, aa: 2 * yu + st.aa, size: 2 * yu + st.size },
    stats: st,
    rows: (() => {
      const c = n * rank + out * rank + out;
      const gz = c + (detach ? 0 : out);
      return { gzb: 0, db: n * rank, dm: n * rank + out * rank, c, gz, size: gz + n * out };
    })(),
    cols: { dx: 0, da: n * inDim, size: n * inDim + rank * inDim },
  };
}

const fmt = (t: TypeInfo): string => `${t.dtype}${fmtShape(t.shape)}`;

/**
 * Checks x [..., in], W [out, in], A [r, in], B [out, r] (and m, bias [out]); returns the layout.
 * W may be stored in f16 (a frozen base): the layer reads it as f32, everything else is f32.
 */
function layerOf(op: string, xs: readonly TypeInfo[], a: DoraAttrs, mAt?: number): DoraLayout {
  const [x, w, A, B] = xs as [TypeInfo, TypeInfo, TypeInfo, TypeInfo];
  for (const t of [x, A, B]) if (t.dtype !== "f32") throw new DTypeError(`${op}: expects f32 tensors, found ${fmt(t)}`, op);
  if (w.dtype !== "f32" && w.dtype !== "f16") throw new DTypeError(`${op}: expects W in f32 or f16, found ${fmt(w)}`, op);
  const bad = (what: string) => new ShapeError(`${op}: ${what}: x ${fmt(x)}, W ${fmt(w)}, A ${fmt(A)}, B ${fmt(B)}`, op);
  if (w.shape.length !== 2 || x.shape.length < 1) throw bad("W must be [out, in] and x [..., in]");
  const [out, inDim] = w.shape as [number, number];
  if (x.shape[x.shape.length - 1] !== inDim) throw bad(`the last axis of x must be in = ${inDim}`);
  if (A.shape.length !== 2 || A.shape[1] !== inDim) throw bad(`A must be [r, ${inDim}]`);
  const rank = A.shape[0]!;
  if (B.shape.length !== 2 || B.shape[0] !== out || B.shape[1] !== rank) throw bad(`B must be [${out}, ${rank}]`);
  if (mAt !== undefined) {
    const vec = (t: TypeInfo | undefined, what: string) => {
      if (!t || t.dtype !== "f32" || t.shape.length !== 1 || t.shape[0] !== out) throw new ShapeError(`${op}: ${what} must be f32[${out}], found ${t ? fmt(t) : "nothing"}`, op);
    };
    vec(xs[mAt], "m");
    if (a.bias) vec(xs[mAt + 1], "the bias");
  }
  if (!(a.rate >= 0 && a.rate < 1)) throw new ShapeError(`${op}: dropout rate must be in [0, 1), found ${a.rate}`, op);
  return doraLayout(sizeOf(x.shape) / inDim, inDim, out, rank, a.detach);
}

function checkKey(op: string, k: TypeInfo | undefined, a: DoraAttrs): void {
  if (a.rate > 0 && (!k || k.dtype !== "u32" || k.shape.join() !== "2")) throw new DTypeError(`${op}: dropout ${a.rate} needs a u32[2] key input, found ${k ? fmt(k) : "nothing"}`, op);
}

function checkPacked(op: string, t: TypeInfo | undefined, size: number, what: string): void {
  if (!t || t.dtype !== "f32" || t.shape.length !== 1 || t.shape[0] !== size) throw new ShapeError(`${op}: ${what} must be f32[${size}], found ${t ? fmt(t) : "nothing"}`, op);
}

const keyAt = (a: DoraAttrs, base: number) => (a.rate > 0 ? base : -1);

// ---- float64 reference -------------------------------------------------------------------

/** x' = x ⊙ M, M = 1/(1 − rate) where the uniform draw of `key` at the element is ≥ rate, else 0 (ops/random.ts dropout). */
export function doraDropMask(key: ArrayLike<number> | undefined, count: number, rate: number): Float64Array | undefined {
  if (!(rate > 0) || !key) return undefined;
  return Float64Array.from(randomBitsReference(key[0]!, key[1]!, count), (bits) => (Math.floor(bits / 256) * 2 ** -24 >= rate ? 1 / (1 - rate) : 0));
}

/** C (p, q) = X (p, k) · Y (q, k)ᵀ, or X · Y when `yRows` is false. */
function mm(X: ArrayLike<number>, Y: ArrayLike<number>, p: number, k: number, q: number, yRows = true): Float64Array {
  const C = new Float64Array(p * q);
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) {
    let acc = 0;
    for (let t = 0; t < k; t++) acc += X[i * k + t]! * (yRows ? Y[j * k + t]! : Y[t * q + j]!);
    C[i * q + j] = acc;
  }
  return C;
}

/** n² (unclamped), W·Aᵀ and A·Aᵀ. */
function normSquared(W: Float64Array, A: Float64Array, B: Float64Array, L: DoraLayout, s: number) {
  const { inDim, out, rank } = L;
  const wa = mm(W, A, out, inDim, rank);
  const aa = mm(A, A, rank, inDim, rank);
  const n2 = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let w2 = 0, cross = 0, quad = 0;
    for (let k = 0; k < inDim; k++) w2 += W[o * inDim + k]! ** 2;
    for (let l = 0; l < rank; l++) {
      cross += wa[o * rank + l]! * B[o * rank + l]!;
      let t = 0;
      for (let j = 0; j < rank; j++) t += B[o * rank + j]! * aa[j * rank + l]!;
      quad += t * B[o * rank + l]!;
    }
    n2[o] = w2 + 2 * s * cross + s * s * quad;
  }
  return { n2, wa, aa };
}

const normOf = (n2: number, a: DoraAttrs): number => Math.sqrt((a.clamp ? Math.max(n2, 0) : n2) + a.eps);

function dropped(x: Float64Array, key: Float64Array | undefined, a: DoraAttrs): Float64Array {
  const mask = doraDropMask(key, x.length, a.rate);
  return mask ? x.map((v, i) => v * mask[i]!) : x;
}

function evalStats(xs: readonly Float64Array[], node: Node): Float64Array {
  const a = node.attrs as unknown as DoraAttrs;
  const L = layerOf("doraStats", node.inputs, a);
  const [x, W, A, B] = xs as [Float64Array, Float64Array, Float64Array, Float64Array];
  const { n2, wa, aa } = normSquared(W, A, B, L, a.scale);
  const out = new Float64Array(L.stats.size);
  out.set(n2, L.stats.n2);
  out.set(mm(dropped(x, xs[keyAt(a, 4)], a), A, L.n, L.inDim, L.rank), L.stats.xa);
  if (!a.detach) out.set(wa, L.stats.wa), out.set(aa, L.stats.aa);
  return out;
}

function evalForward(xs: readonly Float64Array[], node: Node): Float64Array {
  const a = node.attrs as unknown as DoraAttrs;
  const L = layerOf("doraLinear", node.inputs, a, 4);
  const [x, W, A, B, m] = xs as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  const bias = a.bias ? xs[5] : undefined;
  const st = a.stats ? xs[xs.length - 1]! : evalStats([x, W, A, B, ...(a.rate > 0 ? [xs[keyAt(a, a.bias ? 6 : 5)]!] : [])], node);
  const { n: N, inDim, out, rank } = L;
  const xd = dropped(x, xs[keyAt(a, a.bias ? 6 : 5)], a);
  const base = mm(x, W, N, inDim, out);
  const drop = xd === x ? base : mm(xd, W, N, inDim, out);
  const xa = st.subarray(L.stats.xa, L.stats.xa + N * rank);
  const lora = mm(xa, B, N, rank, out);
  const res = new Float64Array(a.save ? L.save.size : N * out);
  for (let i = 0; i < N; i++) for (let o = 0; o < out; o++) {
    const e = i * out + o;
    const g = m[o]! / normOf(st[L.stats.n2 + o]!, a);
    res[e] = (base[e]! + (bias ? bias[o]! : 0)) + ((g - 1) * drop[e]! + g * (a.scale * lora[e]!));
    if (a.save) res[L.save.u + e] = drop[e]! + a.scale * lora[e]!;
  }
  if (a.save) res.set(st, L.save.n2);
  return res;
}

/** g, and the pieces of the packed forward state the backward reads. */
function savedOf(save: Float64Array, m: Float64Array, L: DoraLayout, a: DoraAttrs) {
  const n = Float64Array.from({ length: L.out }, (_, o) => normOf(save[L.save.n2 + o]!, a));
  return { n, g: m.map((v, o) => v / n[o]!), u: save.subarray(L.save.u, L.save.u + L.n * L.out), xa: save.subarray(L.save.xa, L.save.xa + L.n * L.rank) };
}

/** ∂n/∂n² · 2n for the clamp: 1 above zero, ½ at zero (max's VJP splits ties), 0 below. */
const clampSlope = (n2: number, a: DoraAttrs): number => (!a.clamp || n2 > 0 ? 1 : n2 === 0 ? 0.5 : 0);

function evalRows(xs: readonly Float64Array[], node: Node): Float64Array {
  const a = node.attrs as unknown as DoraAttrs;
  const [gy, save, B, m] = xs as [Float64Array, Float64Array, Float64Array, Float64Array];
  const L = rowsLayout(node.inputs, a);
  const { n: N, out, rank } = L;
  const { n, g, u, xa } = savedOf(save, m, L, a);
  const res = new Float64Array(L.rows.size);
  const gz = gy.map((v, e) => v * g[e % out]!);
  res.set(mm(gz, B, N, out, rank, false), L.rows.gzb);
  res.set(gz, L.rows.gz);
  for (let o = 0; o < out; o++) {
    let dm = 0;
    for (let i = 0; i < N; i++) dm += gy[i * out + o]! * u[i * out + o]!;
    dm /= n[o]!;
    res[L.rows.dm + o] = dm;
    const c = a.detach ? 0 : (-g[o]! * dm * clampSlope(save[L.save.n2 + o]!, a)) / n[o]!;
    if (!a.detach) res[L.rows.c + o] = c;
    for (let l = 0; l < rank; l++) {
      let acc = 0;
      for (let i = 0; i < N; i++) acc += gy[i * out + o]! * xa[i * rank + l]!;
      let db = a.scale * g[o]! * acc;
      if (!a.detach) {
        let t = 0;
        for (let j = 0; j < rank; j++) t += B[o * rank + j]! * save[L.save.aa + j * rank + l]!;
        db += a.scale * c * (save[L.save.wa + o * rank + l]! + a.scale * t);
      }
      res[L.rows.db + o * rank + l] = db;
    }
  }
  return res;
}

function evalCols(xs: readonly Float64Array[], node: Node): Float64Array {
  const a = node.attrs as unknown as DoraAttrs;
  const [gy, save, rows, x, W, A, B, m] = xs as Float64Array[] as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  const L = layerOf("doraGradCols", [node.inputs[3]!, node.inputs[4]!, node.inputs[5]!, node.inputs[6]!], a);
  const { n: N, inDim, out, rank } = L;
  const { g } = savedOf(save, m, L, a);
  const mask = doraDropMask(xs[8], N * inDim, a.rate);
  const gzb = rows.subarray(L.rows.gzb, L.rows.gzb + N * rank);
  const Q = mm(gy.map((v, e) => v * g[e % out]!), W, N, out, inDim, false);
  const P = mask ? mm(gy, W, N, out, inDim, false) : Q;
  const lo = mm(gzb, A, N, rank, inDim, false);
  const res = new Float64Array(L.cols.size);
  for (let e = 0; e < N * inDim; e++) res[e] = mask ? P[e]! + mask[e]! * (Q[e]! - P[e]! + a.scale * lo[e]!) : Q[e]! + a.scale * lo[e]!;
  const xd = mask ? x.map((v, e) => v * mask[e]!) : x;
  const cb = new Float64Array(rank * out);
  if (!a.detach) for (let o = 0; o < out; o++) for (let l = 0; l < rank; l++) cb[l * out + o] = rows[L.rows.c + o]! * B[o * rank + l]!;
  const CB = a.detach ? undefined : mm(cb, B, rank, out, rank, false);
  for (let l = 0; l < rank; l++) for (let k = 0; k < inDim; k++) {
    let acc = 0;
    for (let i = 0; i < N; i++) acc += gzb[i * rank + l]! * xd[i * inDim + k]!;
    let da = a.scale * acc;
    if (CB) {
      let t = 0, q = 0;
      for (let o = 0; o < out; o++) t += cb[l * out + o]! * W[o * inDim + k]!;
      for (let j = 0; j < rank; j++) q += CB[l * rank + j]! * A[j * inDim + k]!;
      da += a.scale * t + a.scale * a.scale * q;
    }
    res[L.cols.da + l * inDim + k] = da;
  }
  return res;
}

/** The layout of doraGradRows from gy [..., out], the forward state and B [out, r]. */
function rowsLayout(inputs: readonly TypeInfo[], a: DoraAttrs): DoraLayout {
  const [gy, save, B] = inputs as [TypeInfo, TypeInfo, TypeInfo];
  const [out, rank] = B.shape as [number, number];
  // the backward of the rows never reads W or x: `in` plays no part in its layout
  const L = doraLayout(sizeOf(gy.shape) / out, 0, out, rank, a.detach);
  if (gy.shape[gy.shape.length - 1] !== out || save.shape.length !== 1 || save.shape[0] !== L.save.size) {
    throw new ShapeError(`doraGradRows: gy ${fmt(gy)} and the forward state ${fmt(save)} do not belong to one layer with B ${fmt(B)} (state size ${L.save.size})`, "doraGradRows");
  }
  return L;
}

// ---- the VJP: the fused backward -----------------------------------------------------------

const sl = (b: Emitter, x: Node, at: number, len: number, shape: readonly number[]): Node => {
  const s = b.emit("slice", [x], { start: [at], end: [at + len] });
  return shape.length === 1 ? s : b.emit("reshape", [s], { shape: [...shape] });
};
const bc = (b: Emitter, x: Node, shape: readonly number[]): Node => (x.shape.join() === shape.join() ? x : b.emit("broadcast", [x], { shape: [...shape] }));
const cst = (b: Emitter, v: number, shape: readonly number[]): Node => bc(b, b.emit("constant", [], { value: v, dtype: "f32" }), shape);

/**
 * Cotangents of doraLinear's inputs: the packed forward state (hash-consed with the forward,
 * which the compiler then computes once), doraGradRows and doraGradCols for x, A, B and m;
 * W's (out × in, only when W itself trains) and the bias's in primitives.
 */
function forwardVjp(ct: Node, node: Node, b: Emitter): (Node | null)[] {
  const a = node.attrs as unknown as DoraAttrs;
  if (a.save || a.stats) throw new TraceError(`doraLinear: only the plain layer (not its packed state or its split schedule) is differentiable; differentiate before the compiler schedules it`);
  const [x, W, A, B, m] = node.inputs as [Node, Node, Node, Node, Node];
  const key = a.rate > 0 ? node.inputs[a.bias ? 6 : 5]! : undefined;
  const L = layerOf("doraLinear", node.inputs, a, 4);
  const { n: N, inDim, out, rank } = L;
  const { save: _s, stats: _t, ...rest } = a;
  const save = b.emit("doraLinear", node.inputs, { ...rest, save: true } as unknown as Attrs);
  const gradAttrs: Attrs = { scale: a.scale, eps: a.eps, clamp: a.clamp, rate: a.rate, detach: a.detach, bias: a.bias };
  const rows = b.emit("doraGradRows", [ct, save, B, m], gradAttrs);
  const cols = b.emit("doraGradCols", [ct, save, rows, x, W, A, B, m, ...(key ? [key] : [])], gradAttrs);
  const gy = b.emit("reshape", [ct], { shape: [N, out] });
  const grads: (Node | null)[] = [
    sl(b, cols, L.cols.dx, N * inDim, x.shape),
    weightGrad(b, a, L, { x, W, A, B, m, gy, save, rows, key }),
    sl(b, cols, L.cols.da, rank * inDim, [rank, inDim]),
    sl(b, rows, L.rows.db, out * rank, [out, rank]),
    sl(b, rows, L.rows.dm, out, [out]),
  ];
  if (a.bias) grads.push(N === 1 ? b.emit("reshape", [gy], { shape: [out] }) : b.emit("reduceSum", [gy], { axes: [0] }));
  if (key) grads.push(null);
  return grads;
}

/** dW = gyᵀ·x + ((g − 1)⊙gy)ᵀ·x' (+ c⊙V with the norm differentiated), in primitives. */
function weightGrad(b: Emitter, a: DoraAttrs, L: DoraLayout, t: Record<"x" | "W" | "A" | "B" | "m" | "gy" | "save" | "rows", Node> & { key: Node | undefined }): Node {
  const { n: N, inDim, out } = L;
  const x = b.emit("reshape", [t.x], { shape: [N, inDim] });
  let n2 = sl(b, t.save, L.save.n2, out, [out]);
  if (a.clamp) n2 = b.emit("max", [n2, cst(b, 0, [out])]);
  const g = b.emit("div", [t.m, b.emit("sqrt", [b.emit("add", [n2, cst(b, a.eps, [out])])])]);
  const gRows = bc(b, g, [N, out]);
  const tr = (v: Node) => b.emit("transpose", [v], { perm: [1, 0] });
  let xd = x;
  if (t.key) {
    const bits = b.emit("randomBits", [t.key], { shape: [N, inDim] });
    const unit = b.emit("mul", [b.emit("cast", [b.emit("div", [bits, bc(b, b.emit("constant", [], { value: 256, dtype: "u32" }), [N, inDim])])], { dtype: "f32" }), cst(b, 2 ** -24, [N, inDim])]);
    const keep = b.emit("ge", [unit, cst(b, a.rate, [N, inDim])]);
    xd = b.emit("where", [keep, b.emit("mul", [x, cst(b, 1 / (1 - a.rate), [N, inDim])]), cst(b, 0, [N, inDim])]);
  }
  let dw = xd === x
    ? b.emit("matmul", [tr(b.emit("mul", [t.gy, gRows])), x])
    : b.emit("add", [b.emit("matmul", [tr(t.gy), x]), b.emit("matmul", [tr(b.emit("mul", [t.gy, b.emit("sub", [gRows, cst(b, 1, [N, out])])])), xd])]);
  if (!a.detach) {
    const c = bc(b, b.emit("reshape", [sl(b, t.rows, L.rows.c, out, [out])], { shape: [out, 1] }), [out, inDim]);
    const w = t.W.dtype === "f32" ? t.W : b.emit("cast", [t.W], { dtype: "f32" });
    const v = b.emit("add", [w, b.emit("mul", [b.emit("matmul", [t.B, t.A]), cst(b, a.scale, [out, inDim])])]);
    dw = b.emit("add", [dw, b.emit("mul", [c, v])]);
  }
  return t.W.dtype === "f32" ? dw : b.emit("cast", [dw], { dtype: t.W.dtype });
}

const noVjp = (op: string) => () => {
  throw new TraceError(`${op}: second derivatives through the fused DoRA layer are not supported; trace the composite without the compiler's DoRA rewrite to take them`);
};

// ---- the records -----------------------------------------------------------------------------

export const doraLinear: Primitive = {
  name: "doraLinear",
  kind: "custom",
  infer: (xs, attrs) => {
    const a = attrs as unknown as DoraAttrs;
    const L = layerOf("doraLinear", xs, a, 4);
    const want = 5 + (a.bias ? 1 : 0) + (a.rate > 0 ? 1 : 0) + (a.stats ? 1 : 0);
    if (xs.length !== want) throw new ShapeError(`doraLinear: expects ${want} inputs (x, W, A, B, m${a.bias ? ", bias" : ""}${a.rate > 0 ? ", key" : ""}${a.stats ? ", stats" : ""}), found ${xs.length}`, "doraLinear");
    checkKey("doraLinear", xs[keyAt(a, a.bias ? 6 : 5)], a);
    if (a.stats) checkPacked("doraLinear", xs[xs.length - 1], L.stats.size, "the stats input");
    return { shape: a.save ? [L.save.size] : [...xs[0]!.shape.slice(0, -1), L.out], dtype: "f32" };
  },
  evaluate: evalForward,
  vjp: forwardVjp,
};

export const doraStats: Primitive = {
  name: "doraStats",
  kind: "custom",
  infer: (xs, attrs) => {
    const a = attrs as unknown as DoraAttrs;
    const L = layerOf("doraStats", xs, a);
    if (xs.length !== 4 + (a.rate > 0 ? 1 : 0)) throw new ShapeError(`doraStats: expects x, W, A, B${a.rate > 0 ? ", key" : ""}; found ${xs.length} inputs`, "doraStats");
    checkKey("doraStats", xs[keyAt(a, 4)], a);
    return { shape: [L.stats.size], dtype: "f32" };
  },
  evaluate: evalStats,
  vjp: noVjp("doraStats"),
};

export const doraGradRows: Primitive = {
  name: "doraGradRows",
  kind: "custom",
  arity: 4,
  infer: (xs, attrs) => {
    const a = attrs as unknown as DoraAttrs;
    const L = rowsLayout(xs, a);
    checkPacked("doraGradRows", xs[3], L.out, "m");
    return { shape: [L.rows.size], dtype: "f32" };
  },
  evaluate: evalRows,
  vjp: noVjp("doraGradRows"),
};

export const doraGradCols: Primitive = {
  name: "doraGradCols",
  kind: "custom",
  infer: (xs, attrs) => {
    const a = attrs as unknown as DoraAttrs;
    const L = layerOf("doraGradCols", xs.slice(3, 7), a, undefined);
    if (xs.length !== 8 + (a.rate > 0 ? 1 : 0)) throw new ShapeError(`doraGradCols: expects gy, save, rows, x, W, A, B, m${a.rate > 0 ? ", key" : ""}; found ${xs.length} inputs`, "doraGradCols");
    if (xs[0]!.shape.join() !== [...xs[3]!.shape.slice(0, -1), L.out].join()) throw new ShapeError(`doraGradCols: gy ${fmt(xs[0]!)} does not match x ${fmt(xs[3]!)} and out ${L.out}`, "doraGradCols");
    checkPacked("doraGradCols", xs[1], L.save.size, "the forward state");
    checkPacked("doraGradCols", xs[2], L.rows.size, "doraGradRows");
    checkPacked("doraGradCols", xs[7], L.out, "m");
    checkKey("doraGradCols", xs[8], a);
    return { shape: [L.cols.size], dtype: "f32" };
  },
  evaluate: evalCols,
  vjp: noVjp("doraGradCols"),
};
