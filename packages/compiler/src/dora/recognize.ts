// Finding DoRA in a graph, however it was written. Three questions, each answered by
// reducing nodes to polynomials (algebra.ts) rather than by matching graph shapes:
//
//   1. Is `g` = m / n with n a DoRA row norm of W + s·B·A?  The norm may be the factored
//      √(max(‖W‖² + 2s·rowsum((W·Aᵀ)⊙B) + s²·rowsum((B·(A·Aᵀ))⊙B), 0) + ε) that doraLinear
//      traces, or the explicit √(Σ (W + s·B·A)² + ε) a user writes; the detached form divides
//      by stopGradient(n).
//   2. Is the adapter's input x' = dropout(key, x, rate) (ops/random.ts) or x itself?
//   3. Does node y equal x·Wᵀ + b + (g − 1)⊙(x'·Wᵀ) + g⊙s·(x'·Aᵀ)·Bᵀ as a polynomial in the
//      atoms x·Wᵀ, x'·Wᵀ, (x'·Aᵀ)·Bᵀ, g, b?  Products with a merged weight distribute:
//      x·(g[:,None]⊙(W + s·B·A))ᵀ = g⊙(x·Wᵀ + s·(x·Aᵀ)·Bᵀ), so mergeDora's form matches too.
//
// Reshapes that regroup leading axes (what matmul on [batch, seq, in] traces) are
// transparent. stopGradient is only understood in `m / stopGradient(n)`: anywhere else it
// would change what the backward means, and the expression is left alone.
import type { Node } from "@dorafuse/core";
import { scalarValue as scalarOf } from "../passes/fold-constants.js";
import { add, atom, constant, factors, mul, samePoly, scale, type Poly } from "./algebra.js";

export interface NormInfo {
  W: Node;
  A: Node;
  B: Node;
  scale: number;
  eps: number;
  clamp: boolean;
}

export interface ScaleInfo extends NormInfo {
  m: Node;
  detach: boolean;
}

export interface DropInfo {
  x: Node;
  key: Node;
  rate: number;
}

/** A DoRA layer found at a node: the inputs and attributes of its doraLinear. */
export interface DoraMatch extends ScaleInfo {
  x: Node;
  bias?: Node;
  drop?: DropInfo;
}

const shapeIs = (n: Node, s: readonly number[]) => n.shape.length === s.length && n.shape.every((d, i) => d === s[i]);
const last = (n: Node) => n.shape[n.shape.length - 1];


/** For a commutative op: the operand pair ordered so that `test(first)` holds, if either order does. */
function either<T>(n: Node, test: (a: Node, b: Node) => T | undefined): T | undefined {
  const [a, b] = n.inputs as [Node, Node];
  return test(a, b) ?? test(b, a);
}

/** `transpose(x)` swapping the two axes of a matrix → x. */
const untranspose = (n: Node): Node | undefined => (n.op === "transpose" && n.shape.length === 2 && (n.attrs.perm as number[])[0] === 1 ? n.inputs[0] : undefined);

/** Through reshapes that keep the last axis (leading axes regrouped). */
function peelRows(n: Node): Node {
  let x = n;
  while (x.op === "reshape" && last(x) === last(x.inputs[0]!)) x = x.inputs[0]!;
  return x;
}

export class Recognizer {
  private readonly rows = new Map<Node, Poly | undefined>();
  private readonly scales = new Map<Node, ScaleInfo | undefined>();
  /** Atom key → what it stands for. */
  readonly scaleAtoms = new Map<string, ScaleInfo>();
  readonly inputAtoms = new Map<string, { x: Node; drop?: DropInfo }>();
  readonly vectors = new Map<string, Node>();

  // ---- 1. the magnitude scale g = m / n ---------------------------------------------------

  scaleOf(n: Node): ScaleInfo | undefined {
    if (this.scales.has(n)) return this.scales.get(n);
    let info: ScaleInfo | undefined;
    if (n.op === "div" && n.shape.length === 1) {
      const [m, d] = n.inputs as [Node, Node];
      const detach = d.op === "stopGradient";
      const norm = this.normOf(detach ? d.inputs[0]! : d);
      if (norm && shapeIs(m, [norm.W.shape[0]!]) && m.dtype === "f32") info = { ...norm, m, detach };
    }
    this.scales.set(n, info);
    return info;
  }

  /** n = √(max(n², 0) + ε) (clamp and ε optional) for a DoRA n². */
  normOf(n: Node): NormInfo | undefined {
    if (n.op !== "sqrt") return undefined;
    let t = n.inputs[0]!;
    let eps = 0;
    const withEps = t.op === "add" ? either(t, (u, e) => (scalarOf(e) !== undefined ? { u, e: scalarOf(e)! } : undefined)) : undefined;
    if (withEps) [t, eps] = [withEps.u, withEps.e];
    let clamp = false;
    const clamped = t.op === "max" ? either(t, (v, z) => (scalarOf(z) === 0 ? v : undefined)) : undefined;
    if (clamped) [t, clamp] = [clamped, true];
    const sq = this.normSquared(t);
    if (!sq) return undefined;
    // one W, A, B; n² = 1·‖W‖² + 2s·cross + s²·quad, read back from the coefficients
    const terms = [...sq.poly];
    const w2 = terms.find(([k]) => k.startsWith("w2("));
    const cross = terms.find(([k]) => k.startsWith("cross("));
    const quad = terms.find(([k]) => k.startsWith("quad("));
    if (!w2 || !cross || !quad || terms.length !== 3) return undefined;
    const s = cross[1] / 2;
    const ids = (k: string) => k.slice(k.indexOf("(") + 1, -1).split(",");
    const [cw, ca, cb] = ids(cross[0]);
    const [qa, qb] = ids(quad[0]);
    const [ww] = ids(w2[0]);
    if (!samePoly(new Map([["w2", w2[1]], ["q", quad[1]]]), new Map([["w2", 1], ["q", s * s]])) || ww !== cw || qa !== ca || qb !== cb) return undefined;
    const W = sq.nodes.get(cw!)!;
    const A = sq.nodes.get(ca!)!;
    const B = sq.nodes.get(cb!)!;
    if (A.shape.length !== 2 || B.shape.length !== 2 || A.shape[1] !== W.shape[1] || B.shape[0] !== W.shape[0] || B.shape[1] !== A.shape[0]) return undefined;
    return { W, A, B, scale: s, eps, clamp: clamp || sq.explicit };
  }

  /** n² over the rows of W as a polynomial in ‖W‖², rowsum((W·Aᵀ)⊙B), rowsum((B·A·Aᵀ)⊙B). */
  private normSquared(n: Node): { poly: Poly; nodes: Map<string, Node>; explicit: boolean } | undefined {
    const nodes = new Map<string, Node>();
    let explicit = false;
    const id = (x: Node) => (nodes.set(String(x.id), x), String(x.id));
    const walk = (v: Node): Poly | undefined => {
      const c = scalarOf(v);
      if (c !== undefined) return constant(c);
      switch (v.op) {
        case "add":
        case "sub": {
          const [a, b] = v.inputs.map(walk);
          return a && b ? add(a, b, v.op === "sub" ? -1 : 1) : undefined;
        }
        case "neg": {
          const a = walk(v.inputs[0]!);
          return a && scale(a, -1);
        }
        case "mul": {
          const [a, b] = v.inputs.map(walk);
          return a && b ? mul(a, b) : undefined;
        }
        case "reduceSum": {
          const x = v.inputs[0]!;
          if (x.shape.length !== 2 || (v.attrs.axes as number[]).join() !== "1" || x.op !== "mul") return undefined;
          const cross = either(x, (p, b) => {
            const [w, at] = p.op === "matmul" ? (p.inputs as [Node, Node]) : [];
            const a = at && untranspose(at);
            return w && a ? atom(`cross(${id(w)},${id(a)},${id(b)})`) : undefined;
          });
          if (cross) return cross;
          const quad = either(x, (p, b) => {
            if (p.op !== "matmul" || p.inputs[0] !== b) return undefined;
            const aa = p.inputs[1]!;
            const a = aa.op === "matmul" ? aa.inputs[0]! : undefined;
            return a && untranspose(aa.inputs[1]!) === a ? atom(`quad(${id(a)},${id(b)})`) : undefined;
          });
          if (quad) return quad;
          // Σ V² for an explicit V = W + s·B·A
          const [p, q] = x.inputs.map((e) => this.weight(e, id));
          if (!p || !q || !samePoly(p, q, 1e-12)) return undefined;
          explicit = true;
          let out: Poly = new Map();
          for (const [mono, coef] of mul(p, q)) {
            const f = factors(mono);
            const ws = f.filter((a) => a.startsWith("W(")).map((a) => a.slice(2, -1));
            const bas = f.filter((a) => a.startsWith("BA(")).map((a) => a.slice(3, -1).split(","));
            let key: string | undefined;
            if (ws.length === 2 && ws[0] === ws[1]) key = `w2(${ws[0]})`;
            else if (ws.length === 1 && bas.length === 1) key = `cross(${ws[0]},${bas[0]![1]},${bas[0]![0]})`;
            else if (bas.length === 2 && bas[0]!.join() === bas[1]!.join()) key = `quad(${bas[0]![1]},${bas[0]![0]})`;
            if (!key || f.length !== 2) return undefined;
            out = add(out, scale(atom(key), coef));
          }
          return out;
        }
      }
      return undefined;
    };
    const poly = walk(n);
    return poly && { poly, nodes, explicit };
  }

  /** A weight-shaped [out, in] value as a polynomial in W(·), BA(B,A) and gcol(g) (g[:, None]). */
  private weight(n: Node, id: (x: Node) => string): Poly | undefined {
    const c = scalarOf(n);
    if (c !== undefined) return constant(c);
    switch (n.op) {
      case "add":
      case "sub":
      case "mul": {
        const [a, b] = n.inputs.map((e) => this.weight(e, id));
        if (!a || !b) return undefined;
        return n.op === "mul" ? mul(a, b) : add(a, b, n.op === "sub" ? -1 : 1);
      }
      case "neg": {
        const a = this.weight(n.inputs[0]!, id);
        return a && scale(a, -1);
      }
      case "div": {
        const d = scalarOf(n.inputs[1]!);
        const a = this.weight(n.inputs[0]!, id);
        return a && d ? scale(a, 1 / d) : undefined;
      }
      case "matmul":
        return n.shape.length === 2 ? atom(`BA(${id(n.inputs[0]!)},${id(n.inputs[1]!)})`) : undefined;
      case "broadcast": {
        const col = n.inputs[0]!;
        if (n.shape.length !== 2 || col.op !== "reshape" || !shapeIs(col, [n.shape[0]!, 1])) return undefined;
        const g = col.inputs[0]!;
        return this.scaleOf(g) ? (this.scaleAtoms.set(`g(${g.id})`, this.scaleOf(g)!), atom(`gcol(${g.id})`)) : undefined;
      }
    }
    return n.shape.length === 2 ? atom(`W(${id(n)})`) : undefined;
  }

  // ---- 2. the adapter's input ----------------------------------------------------------------

  /** x' = where(uniform(key) ≥ rate, x·(1/(1 − rate)), 0), as ops/random.ts dropout traces it. */
  dropoutOf(n: Node): DropInfo | undefined {
    if (n.op !== "where") return undefined;
    const [keep, kept, zero] = n.inputs as [Node, Node, Node];
    if (scalarOf(zero) !== 0 || keep.op !== "ge" || kept.op !== "mul") return undefined;
    const rate = scalarOf(keep.inputs[1]!);
    const u = keep.inputs[0]!;
    const scaled = either(kept, (x, c) => (scalarOf(c) !== undefined ? { x, c: scalarOf(c)! } : undefined));
    const cast = u.op === "mul" ? either(u, (f, c) => (scalarOf(c) === 2 ** -24 && f.op === "cast" ? f.inputs[0] : undefined)) : undefined;
    const bits = cast?.op === "div" && scalarOf(cast.inputs[1]!) === 256 ? cast.inputs[0]! : undefined;
    if (rate === undefined || !scaled || !bits || bits.op !== "randomBits" || !shapeIs(bits, scaled.x.shape)) return undefined;
    if (Math.abs(scaled.c * (1 - rate) - 1) > 1e-6) return undefined;
    return { x: scaled.x, key: bits.inputs[0]!, rate };
  }

  /** The atom naming a matmul's left operand: the tensor under leading-axis reshapes, or its dropout. */
  private inputAtom(n: Node): string {
    const root = peelRows(n);
    const drop = this.dropoutOf(root);
    // no commas or parentheses inside: input keys are nested in other atoms' keys
    const key = drop ? `d#${drop.x.id}#${drop.key.id}#${drop.rate}` : `x#${root.id}`;
    this.inputAtoms.set(key, drop ? { x: drop.x, drop } : { x: root });
    return key;
  }

  // ---- 3. the layer's output ----------------------------------------------------------------

  /** A [..., out] value as a polynomial in base(x, W), lora(x, A, B), g(·) and v(·) (vectors over out). */
  row(n: Node): Poly | undefined {
    if (this.rows.has(n)) return this.rows.get(n);
    this.rows.set(n, undefined);
    const p = this.rowOf(n);
    this.rows.set(n, p);
    return p;
  }

  private rowOf(n: Node): Poly | undefined {
    const c = scalarOf(n);
    if (c !== undefined) return constant(c);
    if (n.shape.length === 1) return this.vector(n);
    return this.algebra(n);
  }

  /** A vector over the output rows (broadcast over the batch): g, an expression in g, or opaque. */
  private vector(n: Node): Poly {
    const g = this.scaleOf(n);
    if (g) {
      this.scaleAtoms.set(`g(${n.id})`, g);
      return atom(`g(${n.id})`);
    }
    const p = this.algebra(n);
    if (p && [...p.keys()].some((k) => k.includes("g("))) return p;
    this.vectors.set(`v(${n.id})`, n);
    return atom(`v(${n.id})`);
  }

  private algebra(n: Node): Poly | undefined {
    switch (n.op) {
      case "add":
      case "sub":
      case "mul": {
        const [a, b] = n.inputs.map((e) => this.row(e));
        if (!a || !b) return undefined;
        return n.op === "mul" ? mul(a, b) : add(a, b, n.op === "sub" ? -1 : 1);
      }
      case "neg": {
        const a = this.row(n.inputs[0]!);
        return a && scale(a, -1);
      }
      case "div": {
        const d = scalarOf(n.inputs[1]!);
        const a = this.row(n.inputs[0]!);
        return a && d ? scale(a, 1 / d) : undefined;
      }
      case "reshape":
        return last(n) === last(n.inputs[0]!) ? this.row(n.inputs[0]!) : undefined;
      case "broadcast": {
        const v = peelRows(n.inputs[0]!);
        return v.shape.length === 1 && v.shape[0] === last(n) ? this.row(v) : undefined;
      }
      case "matmul":
        return this.product(n);
      case "doraLinear":
        return this.fused(n);
    }
    return undefined;
  }

  /** x·Mᵀ for a weight polynomial M, or (x·Aᵀ)·Bᵀ. */
  private product(n: Node): Poly | undefined {
    const [left, right] = n.inputs as [Node, Node];
    const w = n.shape.length === 2 ? untranspose(right) : undefined;
    if (!w) return undefined;
    const inner = peelRows(left);
    const a = inner.op === "matmul" && inner.shape.length === 2 ? untranspose(inner.inputs[1]!) : undefined;
    if (a) return atom(`lora(${this.inputAtom(inner.inputs[0]!)},${a.id},${w.id})`);
    const ids = new Map<string, Node>();
    const M = this.weight(w, (x) => (ids.set(String(x.id), x), String(x.id)));
    if (!M) return undefined;
    const x = this.inputAtom(left);
    let out: Poly = new Map();
    for (const [mono, coef] of M) {
      const f = factors(mono);
      const g = f.filter((t) => t.startsWith("gcol(")).map((t) => `g(${t.slice(5, -1)})`);
      const rest = f.filter((t) => !t.startsWith("gcol("));
      if (rest.length !== 1 || g.length > 1) return undefined;
      const t = rest[0]!;
      const mat = t.startsWith("W(") ? atom(`base(${x},${t.slice(2, -1)})`) : atom(`lora(${x},${t.slice(3, -1).split(",").reverse().join(",")})`);
      out = add(out, scale(g.length ? mul(atom(g[0]!), mat) : mat, coef));
    }
    return out;
  }

  /** A doraLinear node (its plain output) as the polynomial it stands for. */
  private fused(n: Node): Poly | undefined {
    const a = n.attrs as { scale: number; eps: number; clamp: boolean; rate: number; detach: boolean; bias: boolean; save?: boolean; stats?: boolean };
    if (a.save || a.stats) return undefined;
    const [x, W, A, B, m] = n.inputs as [Node, Node, Node, Node, Node];
    const key = a.rate > 0 ? n.inputs[a.bias ? 6 : 5]! : undefined;
    const g = `g(d${n.id})`;
    this.scaleAtoms.set(g, { W, A, B, m, scale: a.scale, eps: a.eps, clamp: a.clamp, detach: a.detach });
    const xk = `x#${x.id}`;
    this.inputAtoms.set(xk, { x });
    let xd = xk;
    if (key) {
      xd = `d#${x.id}#${key.id}#${a.rate}`;
      this.inputAtoms.set(xd, { x, drop: { x, key, rate: a.rate } });
    }
    if (a.bias) this.vectors.set(`v(${n.inputs[5]!.id})`, n.inputs[5]!);
    return target(xk, xd, W.id, A.id, B.id, g, a.scale, a.bias ? `v(${n.inputs[5]!.id})` : undefined);
  }

  /** The DoRA layer whose output `n` is, if it is one. */
  match(n: Node): DoraMatch | undefined {
    if (n.op === "doraLinear" || n.dtype !== "f32") return undefined;
    const p = this.row(n);
    if (!p) return undefined;
    const atoms = new Set([...p.keys()].flatMap(factors));
    const gs = [...atoms].filter((k) => k.startsWith("g("));
    const lora = [...p.keys()].map(factors).find((f) => f.length === 2 && f.some((k) => k.startsWith("g(")) && f.some((k) => k.startsWith("lora(")));
    if (gs.length !== 1 || !lora) return undefined;
    const g = this.scaleAtoms.get(gs[0]!)!;
    const xd = lora.find((k) => k.startsWith("lora("))!.slice(5).split(",")[0]!;
    const adapterIn = this.inputAtoms.get(xd);
    if (!adapterIn) return undefined;
    const x = adapterIn.x;
    const xk = `x#${x.id}`;
    const vecs = [...atoms].filter((k) => k.startsWith("v("));
    if (vecs.length > 1 || last(x) !== g.W.shape[1] || last(n) !== g.W.shape[0]) return undefined;
    if (n.shape.slice(0, -1).reduce((s, d) => s * d, 1) !== x.shape.slice(0, -1).reduce((s, d) => s * d, 1)) return undefined;
    const want = target(xk, xd, g.W.id, g.A.id, g.B.id, gs[0]!, g.scale, vecs[0]);
    if (!samePoly(p, want)) return undefined;
    const bias = vecs[0] ? this.vectors.get(vecs[0]) : undefined;
    return { ...g, x, ...(bias ? { bias } : {}), ...(adapterIn.drop ? { drop: adapterIn.drop } : {}) };
  }
}

/** x·Wᵀ + b + (g − 1)⊙(x'·Wᵀ) + s·g⊙(x'·Aᵀ)·Bᵀ as a polynomial. */
function target(x: string, xd: string, w: number, a: number, b: number, g: string, s: number, bias: string | undefined): Poly {
  const base = atom(`base(${x},${w})`);
  const drop = atom(`base(${xd},${w})`);
  const lora = atom(`lora(${xd},${a},${b})`);
  const gp = atom(g);
  let p = add(add(base, mul(add(gp, constant(1), -1), drop)), scale(mul(gp, lora), s));
  if (bias) p = add(p, atom(bias));
  return p;
}
