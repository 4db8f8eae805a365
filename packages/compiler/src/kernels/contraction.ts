// The contraction kernel: one workgroup per tm × tn tile of the main product C (fusion/
// contraction.ts plans the group). In order:
//   1. one K-loop stages every operand tile once per step and accumulates every product from
//      them (tile-program.ts): the main product and those over C's elements in registers
//      owned alike, the others (over the tile's rows, columns or a low rank) beside them;
//   2. the products that are not over C's elements are spilled to workgroup memory;
//   3. the epilogue's row, column and low-rank values are computed into workgroup memory, one
//      pass each in order (their low-rank contractions are loops);
//   4. values other kernels read that are not over C's elements are written by the
//      workgroups of the first row (or column) of tiles;
//   5. each invocation computes the group's element outputs from the accumulators it owns.
import type { Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { leftIndex, LOW_RANK, mainOf, planContraction, viewIndex, type Axis, type ContractionPlan, type TileSpec } from "../fusion/contraction.js";
import { add, flatten, ixVar, lit, mul, reshapeIndex, sub, unflatten, type Index, type Ix } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { toAccumulator } from "../wgsl/types.js";
import { ExprEmitter, Scope } from "./expr.js";
import { elementwiseFlops, type KernelBody, type KernelContext } from "./kernel.js";
import { TileProgram, tileFor, type Gemm, type Operand, type RowDot, type StagedTile } from "./tile-program.js";

interface Held {
  offset: number;
  axes: readonly Axis[];
  /** The value's shape in the tile (viewShape) and its extents there. */
  shape: readonly number[];
  extents: number[];
}

export function contractionKernel(ctx: KernelContext): KernelBody {
  const { group, io, target } = ctx;
  const inputs = new Set(group.inputs);
  const outputs = new Set(group.outputs);
  const main = mainOf(group.anchors);
  const plan = main && planContraction(main, new Set(group.nodes), (n) => inputs.has(n), (n) => outputs.has(n), target);
  if (!plan || typeof plan === "string") throw new CompileError(`contraction kernel k${group.id}: ${plan ?? "no matrix product"}`, "kernels/contraction");
  const { I, O, K, tile: t } = plan;
  const threads = (t.tm / t.rm) * (t.tn / t.rn);
  const pg = new TileProgram(threads);
  const nTn = Math.ceil(O / t.tn);
  const groups = Math.ceil(I / t.tm) * nTn;
  const extent = (axis: Axis, d: number) => (axis === "I" ? t.tm : axis === "O" ? t.tn : d);
  const row0 = ixVar("row0");
  const col0 = ixVar("col0");

  // where the epilogue finds values: accumulators at the element (compose), workgroup memory
  let atElement: Map<Node, string> | undefined;
  const held = new Map<Node, Held>();
  const top = new Scope();
  const emitter = new ExprEmitter({
    io,
    isLoaded: ctx.isLoaded,
    inline: (n) => plan.inline.has(n),
    local: (n, idx) => {
      const acc = atElement?.get(n);
      if (acc !== undefined) return acc;
      const h = held.get(n);
      return h && `sm[${add(lit(h.offset), localFlat(h, viewIndex(n, h.shape, idx)))}]`;
    },
  });
  const localFlat = (h: Held, idx: Index): Ix => flatten(idx.map((c, a) => (h.axes[a] === "I" ? sub(c, row0) : h.axes[a] === "O" ? sub(c, col0) : c)), h.extents);

  // 1. the K-loop
  const names = new Map<TileSpec, string>(plan.tiles.map((s, i) => [s, `t${i}`]));
  const operand = (s: TileSpec, as: "left" | "right"): Operand => [names.get(s)!, s.kMajor ? as === "left" : as === "right"];
  const products = plan.products.map((p, i): Gemm | RowDot => {
    const acc = `acc${i}`;
    const [m, n] = p.axes.map((a, k) => extent(a, p.shape[k]!)) as [number, number];
    if (p.kind === "rowdot") return { kind: "rowdot", acc, left: operand(p.left, "left"), ...(p.right ? { right: operand(p.right, "left") } : {}), m };
    const regs = p.axes.join() === "I,O" ? { rm: t.rm, rn: t.rn } : tileFor(m, n, threads);
    return { kind: "gemm", acc, left: operand(p.left, "left"), right: operand(p.right!, "right"), m, n, ...regs };
  });
  const tiles = plan.tiles.map((s): StagedTile => stageTile(s, names.get(s)!, plan, emitter, top, extent(s.axis, s.extent)));
  const loop = pg.loop(K, t.tk, tiles, products);

  // 2. spill the products not over C's elements
  const spills: string[] = [];
  let offset = 0;
  const hold = (shape: readonly number[], axes: readonly Axis[]): Held => {
    const h = { offset, axes, shape, extents: axes.map((a, k) => extent(a, shape[k]!)) };
    offset += h.extents.reduce((x, y) => x * y, 1);
    return h;
  };
  plan.products.forEach((p, i) => {
    if (p.axes.join() === "I,O") return;
    const h = hold(p.shape, p.axes);
    const prod = products[i]!;
    spills.push(...pg.owned(prod, (row, col, v) => [`sm[${h.offset}u + ${prod.kind === "gemm" ? `(${row}) * ${prod.n}u + ${col}` : row}] = ${v};`]));
    held.set(p.node, h);
  });

  // 3. the epilogue's values over rows, columns and low ranks
  const passes: string[] = [];
  for (const v of plan.staged) {
    const h = hold(v.shape, v.axes);
    const scope = new Scope(top, { barrier: true, declares: ["m", "n", ...v.axes.map((_, a) => `w${a}`)] });
    const value = emitter.value(v.node, reshapeIndex(indexOf(v.axes, v.shape), v.shape, v.node.shape), scope);
    passes.push(...overHeld(h, I, O, threads, [...scope.lines, `sm[${h.offset}u + e] = ${value};`]), "workgroupBarrier();");
    held.set(v.node, h);
  }

  // 4. values read by other kernels that are not over C's elements
  const writes: string[] = [];
  for (const [node, h] of held) {
    if (!outputs.has(node)) continue;
    const owner = [...(h.axes.includes("I") ? [] : ["row0 == 0u"]), ...(h.axes.includes("O") ? [] : ["col0 == 0u"])];
    const store = io.store(node, flatten(indexOf(h.axes, h.shape), h.shape), `sm[${h.offset}u + e]`);
    const body = overHeld(h, I, O, threads, [store]);
    writes.push(...(owner.length ? [`if (${owner.join(" && ")}) {`, ...body.map((l) => `  ${l}`), `}`] : body));
  }

  // 5. the element outputs
  const m = ixVar("m", { bound: I });
  const n = ixVar("n", { bound: O });
  const flatHome = add(mul(m, O), n);
  const compose = pg.owned(products[0]!, (row, col, v, index) => {
    // the products over C's elements are owned like the main one: same registers, same index
    atElement = new Map(plan.products.flatMap((p, i) => (p.axes.join() === "I,O" ? [[p.node, i === 0 ? v : `${products[i]!.acc}[${index}]`] as const] : [])));
    const scope = new Scope(top, { barrier: true, declares: ["m", "n"] });
    const stores = plan.elements.map((o) => io.store(o, flatHome, emitter.value(o, reshapeIndex([m, n], main.shape, o.shape), scope)));
    atElement = undefined;
    return [`let m = row0 + ${row};`, `let n = col0 + ${col};`, `if (m < ${I}u && n < ${O}u) {`, ...[...scope.lines, ...stores].map((l) => `  ${l}`), `}`];
  });

  const smem = Math.max(pg.smem, offset, 1);
  ctx.module.workgroupVar(`sm: array<f32, ${smem}>`);
  for (const [name, code] of emitter.functions) ctx.module.fn(name, code);
  const body = [
    `// contraction group: ${plan.why}`,
    `let wid = ${WORKGROUP_INDEX};`,
    `if (wid >= ${groups}u) { return; }`,
    `let row0 = (wid / ${nTn}u) * ${t.tm}u;`,
    `let col0 = (wid % ${nTn}u) * ${t.tn}u;`,
    ...top.lines,
    ...products.map((p) => pg.declare(p)),
    ...loop,
    ...spills,
    "workgroupBarrier();",
    ...passes,
    ...writes,
    ...compose,
  ];
  const loopFlops = plan.products.reduce((s, p, i) => s + 2 * K * (i === 0 ? I * O : products[i]!.kind === "gemm" ? (products[i] as Gemm).m * (products[i] as Gemm).n * groups : (products[i] as RowDot).m * groups), 0);
  return {
    body,
    workgroupSize: threads,
    workgroups: groups,
    flops: loopFlops + elementwiseFlops(group.nodes.filter((x) => !plan.products.some((p) => p.node === x)), I * O),
    summary: `contraction group around [${I}×${K}]·[${K}×${O}]: ${plan.products.length} products from ${plan.tiles.length} staged tiles, ${plan.inline.size} low-rank (≤ ${LOW_RANK}) contractions inline, tile ${t.tm}×${t.tn}×${t.tk}`,
  };
}

/** The index of a held value in the epilogue's names: m and n for the tile's axes, w0, w1, … for low-rank ones. */
const indexOf = (axes: readonly Axis[], shape: readonly number[]): Ix[] =>
  axes.map((ax, a) => (ax === "I" ? ixVar("m", { bound: shape[a]! }) : ax === "O" ? ixVar("n", { bound: shape[a]! }) : ixVar(`w${a}`, { bound: shape[a]! })));

/** `body` for each in-range element of a held value, with e its offset and m, n, w… its index. */
function overHeld(h: Held, I: number, O: number, threads: number, body: readonly string[]): string[] {
  const total = h.extents.reduce((x, y) => x * y, 1);
  const local = unflatten(ixVar("e", { bound: total }), h.extents);
  const lets = h.axes.map((ax, a) => (ax === "I" ? `let m = row0 + ${local[a]};` : ax === "O" ? `let n = col0 + ${local[a]};` : `let w${a} = ${local[a]};`));
  const bounds = [...(h.axes.includes("I") ? [`m < ${I}u`] : []), ...(h.axes.includes("O") ? [`n < ${O}u`] : [])];
  const inner = bounds.length ? [`if (${bounds.join(" && ")}) {`, ...body.map((l) => `  ${l}`), `}`] : [...body];
  return [`for (var e = lid; e < ${total}u; e += ${threads}u) {`, ...[...lets, ...inner].map((l) => `  ${l}`), `}`];
}

/** A tile of the loop: its element (tr, tc) is the operand at (row, k), computed by the emitter while staging. */
function stageTile(s: TileSpec, name: string, plan: ContractionPlan, emitter: ExprEmitter, top: Scope, ext: number): StagedTile {
  const base = s.axis === "I" ? "row0" : s.axis === "O" ? "col0" : "0u";
  const lim = s.axis === "I" ? plan.I : s.axis === "O" ? plan.O : s.extent;
  const scope = new Scope(top, { barrier: true, declares: ["tr", "tc"] });
  const [rowVar, kVar] = s.kMajor ? ["tc", "tr"] : ["tr", "tc"];
  const r = ixVar(rowVar, { bound: lim });
  const k = ixVar(kVar, { bound: plan.K });
  const v = toAccumulator(s.node.dtype, "f32", emitter.value(s.node, s.form === "left" ? leftIndex(s.node, r, k) : [k, r], scope));
  const load = () => v;
  return s.kMajor
    ? { name, rows: plan.tile.tk, cols: ext, row0: "k0", col0: base, rowEnd: plan.K, colEnd: lim, load, prelude: scope.lines }
    : { name, rows: ext, cols: plan.tile.tk, row0: base, col0: "k0", rowEnd: lim, colEnd: plan.K, load, prelude: scope.lines };
}
