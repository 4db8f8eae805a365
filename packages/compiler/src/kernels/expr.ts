// The expression emitter: WGSL statements computing the value of a graph node at an index.
// Every kernel template is built on it. Elementwise ops apply their primitive's `wgsl`
// template to their arguments' values at the same index; layout ops (reshape, transpose,
// broadcast, slice, pad, concat) and gather turn the index of their output into an index of
// their input, so they cost index arithmetic instead of a copy; iota and randomBits compute
// from the index. Tensors materialized by another kernel are loaded; values the template owns
// (a reduction's result, a matmul's accumulator) come from `local`.
//
// Values are bound with `let` once per (node, index) in a scope; scopes nest (loop bodies)
// and see their parents' values, so each value is computed once where it is valid.
import { getPrimitive, type Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { add, flatten, ixVar, letsOf, lit, litValue, max, min, namesOf, opaque, reshapeIndex, sameIndex, sub, type Index, type Ix } from "../wgsl/ix.js";
import { literal } from "../wgsl/types.js";
import type { KernelIO } from "./io.js";

/**
 * A block of statements. Values are emitted into the outermost scope where everything they
 * use is defined (loop-invariant values move out of loops), but never above a `barrier`
 * scope — the outermost block whose lines the template prints.
 */
export class Scope {
  readonly lines: string[] = [];
  private readonly memo = new Map<string, string>();
  /** Names this block defines: loop counters, index variables, values emitted into it. */
  readonly defines: Set<string>;

  constructor(
    readonly parent?: Scope,
    opts: { declares?: readonly string[]; barrier?: boolean } = {},
  ) {
    this.defines = new Set(opts.declares ?? []);
    this.barrier = opts.barrier ?? parent === undefined;
  }

  readonly barrier: boolean;

  find(key: string): string | undefined {
    return this.memo.get(key) ?? this.parent?.find(key);
  }

  remember(key: string, name: string): void {
    this.memo.set(key, name);
  }

  line(s: string): void {
    this.lines.push(s);
  }

  /**
   * The outermost scope from this one up (to the first barrier, or to the root with
   * `throughBarriers`) that defines none of `names` above it.
   */
  placeFor(names: ReadonlySet<string>, throughBarriers = false): Scope {
    let s: Scope = this;
    while ((throughBarriers || !s.barrier) && s.parent && ![...names].some((n) => s.defines.has(n))) s = s.parent;
    return s;
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/g;

export interface ExprEnv {
  io: KernelIO;
  /** Is `node` read from memory in this kernel (materialized by another kernel, or an input)? */
  isLoaded(node: Node): boolean;
  /** The value the template itself holds for `node` at `idx`, if any. */
  local?(node: Node, idx: Index): string | undefined;
  /** The kernel's own index and its flat form, so loads at that index reuse `gid`. */
  home?: { idx: Index; flat: Ix; shape: readonly number[] };
  /**
   * Contractions (matmul, reduceSum) the kernel computes inline, as a loop at each index they
   * are read at: the low-rank products of a contraction group's epilogue (fusion/contraction.ts).
   */
  inline?(node: Node): boolean;
}

export class ExprEmitter {
  private readonly uses = new Map<number, number>();
  /** Helper functions the emitted expressions call (name → WGSL), for the module. */
  readonly functions = new Map<string, string>();

  constructor(private readonly env: ExprEnv) {}

  /** The flat offset of `idx` in `shape`, reusing the kernel's own flat index where it applies. */
  flat(idx: Index, shape: readonly number[]): Ix {
    const h = this.env.home;
    if (h && sameIndex(idx, h.idx) && h.shape.length === shape.length && h.shape.every((d, i) => d === shape[i])) return h.flat;
    return flatten(idx, shape);
  }

  /** A WGSL expression for the value of `node` at `idx`, emitting the statements it needs into `scope`. */
  value(node: Node, idx: Index, scope: Scope): string {
    if (idx.length !== node.shape.length) {
      throw new CompileError(`index of rank ${idx.length} for %${node.id}:${node.dtype}[${node.shape}]`, "kernels/expr");
    }
    const key = `${node.id}@${idx.join(",")}`;
    const hit = scope.find(key);
    if (hit === undefined) this.declareLets(idx, scope);
    if (hit !== undefined) return hit;
    const local = this.env.local?.(node, idx);
    if (local !== undefined) return local;
    if (node.op === "constant") return literal(node.attrs.value as number, node.dtype);
    let expr: string;
    if (this.env.isLoaded(node)) expr = this.env.io.load(node, this.flat(idx, node.shape));
    else {
      const computed = this.compute(node, idx, scope);
      // layout ops return their input's variable: no new binding needed
      if (computed.alias) {
        scope.remember(key, computed.expr);
        return computed.expr;
      }
      expr = computed.expr;
    }
    const name = this.fresh(node);
    const home = scope.placeFor(new Set(expr.match(IDENT) ?? []));
    home.line(`let ${name} = ${expr};`);
    home.defines.add(name);
    home.remember(key, name);
    if (home !== scope) scope.remember(key, name);
    return name;
  }

  /** The WGSL text of index `x`, declaring the `let` variables it uses where they are first needed. */
  ix(x: Ix, scope: Scope): string {
    this.declareLets([x], scope);
    return x.text;
  }

  /**
   * Declares each `let` index variable of `xs` once, in the outermost scope where its
   * definition is valid. Index variables are defined from names the template's frame declares
   * before any block (gid, row, batch) or that a scope declares (loop counters), so they may
   * rise through barriers: the root scope's lines are printed at the top of the kernel.
   */
  private declareLets(xs: Index, scope: Scope): void {
    for (const v of letsOf(xs)) {
      if (v.k !== "var" || !v.def) continue;
      const key = `let:${v.name}`;
      if (scope.find(key) !== undefined) continue;
      const home = scope.placeFor(new Set(namesOf(v.def)), true);
      home.line(`let ${v.name} = ${v.def.text};`);
      home.defines.add(v.name);
      home.remember(key, v.name);
      if (home !== scope) scope.remember(key, v.name);
    }
  }

  private fresh(node: Node): string {
    const k = this.uses.get(node.id) ?? 0;
    this.uses.set(node.id, k + 1);
    return k === 0 ? `n${node.id}` : `n${node.id}_${k}`;
  }

  private compute(node: Node, idx: Index, scope: Scope): { expr: string; alias?: boolean } {
    const at = (i: number, ix: Index) => this.value(node.inputs[i]!, ix, scope);
    const a = node.attrs;
    if ((node.op === "matmul" || node.op === "reduceSum") && this.env.inline?.(node)) return { expr: this.sumLoop(node, idx, scope) };
    switch (node.op) {
      case "broadcast": {
        const x = node.inputs[0]!;
        const off = node.shape.length - x.shape.length;
        return { expr: at(0, x.shape.map((d, k) => (d === 1 ? lit(0) : idx[k + off]!))), alias: true };
      }
      case "transpose": {
        const perm = a.perm as number[];
        const inIdx: Ix[] = new Array(perm.length);
        perm.forEach((p, j) => (inIdx[p] = idx[j]!));
        return { expr: at(0, inIdx), alias: true };
      }
      case "reshape":
        return { expr: at(0, reshapeIndex(idx, node.shape, node.inputs[0]!.shape)), alias: true };
      case "slice": {
        const start = a.start as number[];
        return { expr: at(0, idx.map((x, k) => add(x, lit(start[k]!)))), alias: true };
      }
      case "pad":
        return { expr: this.pad(node, idx, scope) };
      case "concat":
        return { expr: this.concat(node, idx, scope) };
      case "gather":
        return { expr: this.gather(node, idx, scope), alias: true };
      case "iota": {
        const i = idx[a.axis as number]!;
        return { expr: node.dtype === "u32" ? i.text : `${node.dtype === "bool" ? "bool" : node.dtype}(${i})` };
      }
      case "randomBits": {
        // the primitive's WGSL twin of the interpreter's threefry2x32 (packages/core/src/random)
        this.helpers(node.op);
        const k0 = at(0, [lit(0)]);
        const k1 = at(0, [lit(1)]);
        return { expr: `df_threefry2x32(vec2<u32>(${k0}, ${k1}), vec2<u32>(${this.flat(idx, node.shape)}, 0u)).x` };
      }
      case "threefry2x32": {
        // word j of the cipher applied to the counter pair at the index's leading axes
        this.helpers(node.op);
        const r = node.shape.length;
        const pair = [0, 1].map((w) => at(1, [...idx.slice(0, r - 1), lit(w)]));
        const v = `df_threefry2x32(vec2<u32>(${at(0, [lit(0)])}, ${at(0, [lit(1)])}), vec2<u32>(${pair.join(", ")}))`;
        const j = idx[r - 1]!;
        return { expr: litValue(j) === 0 ? `${v}.x` : litValue(j) === 1 ? `${v}.y` : `${v}[${j}]` };
      }
    }
    const prim = getPrimitive(node.op);
    if (prim.kind === "elementwise" && prim.wgsl) {
      this.helpers(node.op);
      const args = node.inputs.map((_, i) => at(i, idx));
      return { expr: prim.wgsl(args, node) };
    }
    if (prim.kind === "source" && prim.wgsl) return { expr: prim.wgsl([], node) };
    throw new CompileError(
      `no inline lowering for %${node.id} = ${node.op} (kind ${prim.kind}): it must be materialized by its own kernel`,
      "kernels/expr",
    );
  }

  /**
   * Σ over the contracted axes, as a loop placed in the outermost scope where `idx` is
   * defined; what the summand reads that does not depend on the loop rises out of it.
   */
  private sumLoop(node: Node, idx: Index, scope: Scope): string {
    const name = this.fresh(node);
    const x = node.inputs[0]!;
    const axes = node.op === "matmul" ? [x.shape.length - 1] : (node.attrs.axes as number[]);
    const names = axes.map((_, j) => `${name}_k${j}`);
    const vars = axes.map((ax, j) => ixVar(names[j]!, { bound: x.shape[ax]! }));
    const home = scope.placeFor(new Set(idx.flatMap(namesOf)));
    const body = new Scope(home, { declares: names });
    let term: string;
    if (node.op === "matmul") {
      const r = node.shape.length;
      const [p, q] = [this.value(x, [...idx.slice(0, r - 1), vars[0]!], body), this.value(node.inputs[1]!, [...idx.slice(0, r - 2), vars[0]!, idx[r - 1]!], body)];
      term = `${p} * ${q}`;
    } else {
      const kept = idx[Symbol.iterator]();
      term = this.value(x, x.shape.map((_, k) => (axes.includes(k) ? vars[axes.indexOf(k)]! : kept.next().value!)), body);
    }
    const loops = names.map((v, j) => `for (var ${v} = 0u; ${v} < ${x.shape[axes[j]!]}u; ${v}++) {`);
    home.line(`var ${name}_acc = ${literal(0, node.dtype)};`);
    home.line([...loops, ...body.lines.map((l) => `  ${l}`), `  ${name}_acc += ${term};`, ...loops.map(() => "}")].join("\n"));
    home.defines.add(`${name}_acc`);
    return `${name}_acc`;
  }

  /** The WGSL functions `op`'s lowering calls, once per module (primitives may share them: the threefry cipher). */
  private helpers(op: string): void {
    const code = getPrimitive(op).wgslFunctions;
    if (code) this.functions.set(`wgsl:${code}`, code);
  }

  /** Zero outside the source range; inside, the source at the shifted (clamped) index. */
  private pad(node: Node, idx: Index, scope: Scope): string {
    const x = node.inputs[0]!;
    const low = node.attrs.low as number[];
    const conds: string[] = [];
    const inIdx = idx.map((o, k) => {
      const lo = low[k]!;
      const len = x.shape[k]!;
      if (lo === 0 && len === node.shape[k]) return o;
      const hi = lo + len;
      if (lo > 0) conds.push(`${o} >= ${lit(lo)}`);
      conds.push(`${o} < ${lit(hi)}`);
      return sub(min(max(o, lit(lo)), lit(hi - 1)), lit(lo));
    });
    const v = this.value(x, inIdx, scope);
    if (conds.length === 0) return v;
    return `select(${literal(0, node.dtype)}, ${v}, ${conds.join(" && ")})`;
  }

  /** Each piece read at its clamped index; the one whose range holds the index is selected. */
  private concat(node: Node, idx: Index, scope: Scope): string {
    const axis = node.attrs.axis as number;
    const o = idx[axis]!;
    const known = litValue(o);
    let offset = 0;
    const pieces = node.inputs.map((x) => {
      const len = x.shape[axis]!;
      const start = offset;
      offset += len;
      return { x, start, len };
    });
    const live = pieces.filter((p) => p.len > 0);
    const read = (p: (typeof pieces)[number]) => {
      const local = known !== undefined ? lit(Math.min(Math.max(known, p.start), p.start + p.len - 1) - p.start)
        : min(sub(max(o, lit(p.start)), lit(p.start)), lit(p.len - 1));
      const ix = idx.map((v, k) => (k === axis ? (p.len === 1 ? lit(0) : local) : v));
      return this.value(p.x, ix, scope);
    };
    if (known !== undefined) return read(live.find((p) => known < p.start + p.len)!);
    let expr = read(live[live.length - 1]!);
    for (let i = live.length - 2; i >= 0; i--) {
      const p = live[i]!;
      expr = `select(${expr}, ${read(p)}, ${o} < ${lit(p.start + p.len)})`;
    }
    return expr;
  }

  /** x at the index where the gathered axis is replaced by the (clamped) index value. */
  private gather(node: Node, idx: Index, scope: Scope): string {
    const [x, ind] = node.inputs as [Node, Node];
    const axis = node.attrs.axis as number;
    const r = ind.shape.length;
    const iv = this.value(ind, idx.slice(axis, axis + r), scope);
    const n = x.shape[axis]!;
    const pos = ind.dtype === "u32" ? min(opaque(iv), lit(n - 1)) : opaque(`u32(clamp(${iv}, 0i, ${n - 1}i))`, n);
    const xIdx = [...idx.slice(0, axis), pos, ...idx.slice(axis + r)];
    return this.value(x, xIdx, scope);
  }
}
