// The forward kernels of a DoRA layer (schedule.ts says which runs):
//   single — doraLinear without a stats input: one workgroup per TM × TN tile of y; from the x,
//            x', W and A tiles of one loop over `in` it accumulates x·Wᵀ (and x'·Wᵀ with
//            dropout), x'·Aᵀ, W·Aᵀ, A·Aᵀ and ‖W‖², then composes n and y in its epilogue;
//   split  — doraStats (n² per output row, x'·Aᵀ per batch row: one workgroup role each) and
//            doraLinear reading it: a tiled x·Wᵀ whose epilogue composes y.
// With `save` the layer also writes u = x'·Wᵀ + s·(x'·Aᵀ)·Bᵀ and the statistics the backward
// reads (core/src/prims/dora.ts gives the layout).
import type { CustomBody, CustomBodyContext } from "../kernels/custom.js";
import { CompileError } from "../errors.js";
import { adapterInput, f32, layerOf, maskFn, normFn, readers, smemFloats, type Layer } from "./layer.js";
import { mainTile, TileProgram, tileFor, type Gemm, type RowDot, type StagedTile } from "../kernels/tile-program.js";
import { singleTile } from "./schedule.js";

/** Depth of one step over `in`: 32, or 16 where workgroup memory is short. */
const TK = 32;

/** W's rows [col0, col0 + cols) over one step of k, stored k-major — (k, o) — as the main product's right operand. */
const wTile = (L: Layer, tk: number, cols: number, col0: string): StagedTile => ({ name: "w", rows: tk, cols, row0: "k0", col0, rowEnd: L.inDim, colEnd: L.out, load: (k, o) => `in_w(${o} * ${L.inDim}u + ${k})` });
const aTile = (L: Layer, tk: number): StagedTile => ({ name: "a", rows: L.rank, cols: tk, row0: "0u", col0: "k0", rowEnd: L.rank, colEnd: L.inDim, load: (r, c) => `in_a(${r} * ${L.inDim}u + ${c})` });
const xTile = (L: Layer, tk: number, name: "x" | "xd", rows: number, row0: string): StagedTile => ({
  name, rows, cols: tk, row0, col0: "k0", rowEnd: L.n, colEnd: L.inDim,
  load: (r, c) => (name === "x" ? `in_x(${r} * ${L.inDim}u + ${c})` : adapterInput(L, `${r} * ${L.inDim}u + ${c}`)),
});

interface NormProducts {
  wa: Gemm;
  aa: Gemm;
  w2: RowDot;
}

/** ‖W‖² (a row dot per invocation), W·Aᵀ over `rows` rows of W (staged k-major), and A·Aᵀ. */
function normProducts(L: Layer, rows: number, threads: number): NormProducts {
  return {
    wa: { kind: "gemm", acc: "acc_wa", left: ["w", true], right: ["a", true], m: rows, n: L.rank, ...tileFor(rows, L.rank, threads) },
    aa: { kind: "gemm", acc: "acc_aa", left: ["a", false], right: ["a", true], m: L.rank, n: L.rank, ...tileFor(L.rank, L.rank, threads) },
    w2: { kind: "rowdot", acc: "acc_w2", left: ["w", true], right: ["w", true], m: rows },
  };
}

/** Workgroup memory the norm epilogue needs beyond `base`, with A·Aᵀ in chunks of `chunk` rows. */
const normMemory = (rows: number, R: number, chunk: number) => 2 * rows * R + rows + chunk * R;

/** How the epilogue reads W·Aᵀ: spilled to workgroup memory as rows × r, or as r × rows (the stats kernel's orientation). */
interface WaLayout {
  product: Gemm;
  transposed: boolean;
}

/**
 * n² of `rows` rows of W from `row0` on: n² = ‖W‖² + 2s·Σ_l (W·Aᵀ)_l·B_l + s²·Σ_j B_j·Σ_l (A·Aᵀ)_jl·B_l.
 * W·Aᵀ and B's rows go through workgroup memory from `at`, A·Aᵀ in chunks of rows when the
 * adapter's workgroup memory is short; the invocation holding row q's ‖W‖² finishes it and
 * `done(q, o, n2)` gets the value.
 */
function normEpilogue(pg: TileProgram, L: Layer, p: { aa: Gemm; w2: RowDot }, wa: WaLayout, rows: number, at: number, limit: number, done: (q: string, o: string, n2: string) => string[]): string[] {
  const R = L.rank;
  const s = L.attrs.scale;
  const [waAt, bs, quad] = [at, at + rows * R, at + 2 * rows * R];
  const aa = quad + rows;
  const chunk = Math.max(1, Math.min(R, Math.floor((limit - aa) / R)));
  pg.reserve(at, normMemory(rows, R, chunk));
  const waOf = (q: string, l: string) => (wa.transposed ? `sm[${waAt}u + ${l} * ${rows}u + ${q}]` : `sm[${waAt}u + ${q} * ${R}u + ${l}]`);
  return [
    ...pg.owned(wa.product, (row, col, v) => [`sm[${waAt}u + (${row}) * ${wa.transposed ? rows : R}u + ${col}] = ${v};`]),
    `for (var e = lid; e < ${rows * R}u; e += ${pg.threads}u) {`,
    `  let o = row0 + e / ${R}u;`,
    `  var v = 0.0;`,
    `  if (o < ${L.out}u) { v = in_b(o * ${R}u + e % ${R}u); }`,
    `  sm[${bs}u + e] = v;`,
    `}`,
    `for (var e = lid; e < ${rows}u; e += ${pg.threads}u) { sm[${quad}u + e] = 0.0; }`,
    `for (var c0 = 0u; c0 < ${R}u; c0 += ${chunk}u) {`,
    `  workgroupBarrier();`,
    ...pg.owned(p.aa, (row, col, v) => [`if (${row} >= c0 && ${row} < c0 + ${chunk}u) { sm[${aa}u + (${row} - c0) * ${R}u + ${col}] = ${v}; }`]).map((l) => `  ${l}`),
    `  workgroupBarrier();`,
    ...pg.eachRow(p.w2, (q) => [
      `for (var j = 0u; j < ${chunk}u && c0 + j < ${R}u; j++) {`,
      `  var t = 0.0;`,
      `  for (var l = 0u; l < ${R}u; l++) { t += sm[${aa}u + j * ${R}u + l] * sm[${bs}u + ${q} * ${R}u + l]; }`,
      `  sm[${quad}u + ${q}] += sm[${bs}u + ${q} * ${R}u + c0 + j] * t;`,
      `}`,
    ]).map((l) => `  ${l}`),
    `}`,
    ...pg.eachRow(p.w2, (q, _, slot) => [
      `let o = row0 + ${q};`,
      `var cross = 0.0;`,
      `for (var l = 0u; l < ${R}u; l++) { cross += ${waOf(q, "l")} * sm[${bs}u + ${q} * ${R}u + l]; }`,
      `let n2 = acc_w2[${slot}] + ${f32(2 * s)} * cross + ${f32(s * s)} * sm[${quad}u + ${q}];`,
      ...done(q, "o", "n2"),
    ]),
  ];
}

/** Writes W·Aᵀ (with the norm differentiated, the backward needs it), rows from row0. */
const waRows = (pg: TileProgram, L: Layer, p: NormProducts, at: number, when: string): string[] =>
  L.attrs.detach ? [] : [`if (${when}) {`, ...pg.owned(p.wa, (row, col, v) => [`if (row0 + ${row} < ${L.out}u) { put(${at}u + (row0 + ${row}) * ${L.rank}u + ${col}, ${v}); }`]), `}`];

const aaRows = (pg: TileProgram, L: Layer, p: NormProducts, at: number, when: string): string[] =>
  L.attrs.detach ? [] : [`if (${when}) {`, ...pg.owned(p.aa, (row, col, v) => [`put(${at}u + (${row}) * ${L.rank}u + ${col}, ${v});`]), `}`];

/** y (and u) for every element of the tile an invocation owns: x'·Aᵀ rows at `xa`, B rows at `bs`, n² at `ns`. */
function compose(pg: TileProgram, L: Layer, base: Gemm, drop: Gemm | undefined, at: { xa: number; bs: number; ns: number }): string[] {
  const { n: N, out: OUT, rank: R } = L;
  const s = f32(L.attrs.scale);
  const save = L.attrs.save;
  return pg.owned(base, (row, col, v, index) => [
    `let gi = row0 + ${row};`,
    `let go = col0 + ${col};`,
    `if (gi < ${N}u && go < ${OUT}u) {`,
    `  var lo = 0.0;`,
    `  for (var l = 0u; l < ${R}u; l++) { lo += sm[${at.xa}u + (${row}) * ${R}u + l] * sm[${at.bs}u + (${col}) * ${R}u + l]; }`,
    `  let g = in_m(go) / dora_norm(sm[${at.ns}u + ${col}]);`,
    `  let d = ${drop ? `${drop.acc}[${index}]` : v};`,
    `  put(gi * ${OUT}u + go, (${v}${L.attrs.bias ? " + in_bias(go)" : ""}) + ((g - 1.0) * d + g * (${s} * lo)));`,
    ...(save ? [`  put(${L.save.u}u + gi * ${OUT}u + go, d + ${s} * lo);`] : []),
    `}`,
  ]);
}

/** The tile of the main product: the whole batch up to 64 rows, 64 output rows, smaller where memory is short. */
function singleTiles(L: Layer, limit: number): { tm: number; tn: number; tk: number } {
  let { tm, tn } = singleTile(L.n, L.out);
  const drop = L.attrs.rate > 0 ? 2 : 1;
  const fits = (tk: number) => (drop * tm + tn + L.rank) * tk <= limit && tm * L.rank + tn + normMemory(tn, L.rank, 1) <= limit;
  while (!fits(16) && tm * tn > 64) {
    if (tn >= tm) tn /= 2;
    else tm /= 2;
  }
  return { tm, tn, tk: fits(TK) ? TK : 16 };
}

/**
 * The split main kernel's tile: 64 × 64 where it fits, halved (the larger side first) until
 * both its K-loop's x and W tiles and its compose's x'·Aᵀ and B rows — (tm + tn)·r floats,
 * which grow with the rank — fit the adapter's workgroup memory.
 */
function splitTiles(L: Layer, limit: number): { tm: number; tn: number } {
  let tm = L.n <= 32 ? 32 : 64;
  let tn = L.out <= 32 ? 32 : 64;
  const drop = L.attrs.rate > 0 ? 2 : 1;
  const fits = () => (drop * tm + tn) * TK <= limit && (tm + tn) * L.rank + tn <= limit;
  while (!fits() && tm * tn > 64) {
    if (tn >= tm) tn /= 2;
    else tm /= 2;
  }
  return { tm, tn };
}

function forwardReaders(ctx: CustomBodyContext, L: Layer): void {
  const a = L.attrs;
  readers(ctx, ["x", "w", "a", "b", "m", ...(a.bias ? ["bias"] : []), ...(a.rate > 0 ? ["key"] : []), ...(a.stats ? ["stats"] : [])]);
  normFn(ctx, L);
  if (a.rate > 0) maskFn(ctx, L, "key");
}

/** x·Wᵀ (and x'·Wᵀ), up to 8 × 8 outputs per invocation. */
function mainProducts(L: Layer, tm: number, tn: number): { base: Gemm; drop?: Gemm } {
  const base: Gemm = { kind: "gemm", acc: "acc_y", left: ["x", false], right: ["w", false], m: tm, n: tn, ...mainTile(tm, tn) };
  return L.attrs.rate > 0 ? { base, drop: { ...base, acc: "acc_d", left: ["xd", false] } } : { base };
}

/** The single-kernel schedule: one dispatch computes the layer. */
export function singleKernel(ctx: CustomBodyContext): CustomBody {
  const [x, w, a] = ctx.node.inputs;
  const L = layerOf(ctx.node, x!, w!, a!);
  const limit = smemFloats(ctx);
  const { tm, tn, tk } = singleTiles(L, limit);
  const dropout = L.attrs.rate > 0;
  const { base, drop } = mainProducts(L, tm, tn);
  const pg = new TileProgram((tm / base.rm) * (tn / base.rn));
  const R = L.rank;
  const xa: Gemm = { kind: "gemm", acc: "acc_xa", left: [dropout ? "xd" : "x", false], right: ["a", true], m: tm, n: R, ...tileFor(tm, R, pg.threads) };
  const np = normProducts(L, tn, pg.threads);
  const products = [base, ...(drop ? [drop] : []), xa, np.wa, np.aa, np.w2];
  const tiles = [xTile(L, tk, "x", tm, "row0"), ...(dropout ? [xTile(L, tk, "xd", tm, "row0")] : []), wTile(L, tk, tn, "col0"), aTile(L, tk)];
  forwardReaders(ctx, L);
  const nTn = Math.ceil(L.out / tn);
  const groups = Math.ceil(L.n / tm) * nTn;
  // x'·Aᵀ, n² and B's rows stay in workgroup memory for the compose; the norm's scratch follows
  const at = { xa: 0, ns: tm * R, bs: tm * R + tn + tn * R };
  const save = L.attrs.save;
  const body = [
    `// single-kernel DoRA forward: ${tm} batch rows × ${tn} output rows per workgroup`,
    `let wid = ${ctx.workgroupIndex};`,
    `if (wid >= ${groups}u) { return; }`,
    `let row0 = (wid / ${nTn}u) * ${tm}u;`,
    `let col0 = (wid % ${nTn}u) * ${tn}u;`,
    ...products.map((p) => pg.declare(p)),
    ...pg.loop(L.inDim, tk, tiles, products),
    ...pg.owned(xa, (row, col, v) => [
      `sm[${at.xa}u + (${row}) * ${R}u + ${col}] = ${v};`,
      ...(save ? [`if (wid % ${nTn}u == 0u && row0 + ${row} < ${L.n}u) { put(${L.save.xa}u + (row0 + ${row}) * ${R}u + ${col}, ${v}); }`] : []),
    ]),
    // the norm epilogue's rows are this tile's output rows
    `{`,
    `let row0 = col0;`,
    ...normEpilogue(pg, L, np, { product: np.wa, transposed: false }, tn, at.ns + tn, limit, (q, o, n2) => [
      `sm[${at.ns}u + ${q}] = ${n2};`,
      ...(save ? [`if (wid < ${nTn}u && ${o} < ${L.out}u) { put(${L.save.n2}u + ${o}, ${n2}); }`] : []),
    ]),
    ...(save ? waRows(pg, L, np, L.save.wa, `wid < ${nTn}u`) : []),
    `}`,
    ...(save ? aaRows(pg, L, np, L.save.aa, "wid == 0u") : []),
    `workgroupBarrier();`,
    ...compose(pg, L, base, drop, at),
  ];
  const flops = 2 * L.n * L.out * L.inDim * (dropout ? 2 : 1) + groups * 2 * L.inDim * ((tm + tn + R) * R + tn);
  return finish(ctx, L, pg, body, groups, flops);
}

/** The split schedule's main kernel: x·Wᵀ tiles, composed with the layer's doraStats. */
export function mainKernel(ctx: CustomBodyContext): CustomBody {
  const [x, w, a] = ctx.node.inputs;
  const L = layerOf(ctx.node, x!, w!, a!);
  const { tm, tn } = splitTiles(L, smemFloats(ctx));
  const { base, drop } = mainProducts(L, tm, tn);
  const pg = new TileProgram((tm / base.rm) * (tn / base.rn));
  forwardReaders(ctx, L);
  const nTn = Math.ceil(L.out / tn);
  const groups = Math.ceil(L.n / tm) * nTn;
  const R = L.rank;
  const at = { xa: 0, ns: tm * R, bs: tm * R + tn };
  pg.reserve(0, at.bs + tn * R);
  const stage = (count: number, to: number, idx: string, cond: string, load: string) =>
    [`for (var e = lid; e < ${count}u; e += ${pg.threads}u) {`, `  let r = ${idx};`, `  var v = 0.0;`, `  if (${cond}) { v = ${load}; }`, `  sm[${to}u + e] = v;`, `}`];
  const body = [
    `// DoRA forward, split schedule: ${tm} × ${tn} tiles of x·Wᵀ composed with doraStats`,
    `let wid = ${ctx.workgroupIndex};`,
    `if (wid >= ${groups}u) { return; }`,
    `let row0 = (wid / ${nTn}u) * ${tm}u;`,
    `let col0 = (wid % ${nTn}u) * ${tn}u;`,
    pg.declare(base),
    ...(drop ? [pg.declare(drop)] : []),
    ...pg.loop(L.inDim, TK, [xTile(L, TK, "x", tm, "row0"), ...(drop ? [xTile(L, TK, "xd", tm, "row0")] : []), wTile(L, TK, tn, "col0")], [base, ...(drop ? [drop] : [])]),
    ...stage(tm * R, at.xa, `row0 + e / ${R}u`, `r < ${L.n}u`, `in_stats(${L.stats.xa}u + r * ${R}u + e % ${R}u)`),
    ...stage(tn * R, at.bs, `col0 + e / ${R}u`, `r < ${L.out}u`, `in_b(r * ${R}u + e % ${R}u)`),
    ...stage(tn, at.ns, `col0 + e`, `r < ${L.out}u`, `in_stats(${L.stats.n2}u + r)`),
    `workgroupBarrier();`,
    ...compose(pg, L, base, drop, at),
    ...(L.attrs.save ? [`for (var e = wid * ${pg.threads}u + lid; e < ${L.stats.size}u; e += ${groups * pg.threads}u) { put(${L.save.n2}u + e, in_stats(e)); }`] : []),
  ];
  return finish(ctx, L, pg, body, groups, 2 * L.n * L.out * (L.inDim * (drop ? 2 : 1) + R));
}

/**
 * The split schedule's first kernel: n² per output row and x'·Aᵀ per batch row, one role per
 * workgroup, 64 rows each. Both products are taken as A times the rows (A·W_blockᵀ, A·x'_blockᵀ):
 * neighbouring invocations then own neighbouring rows and share A's values, the pattern the
 * main product runs fastest in.
 */
export function statsKernel(ctx: CustomBodyContext): CustomBody {
  const [x, w, a] = ctx.node.inputs;
  const L = layerOf(ctx.node, x!, w!, a!);
  const R = L.rank;
  const limit = smemFloats(ctx);
  const rows = [64, 32, 16, 8].find((r) => normMemory(r, R, 1) <= limit && (r + R) * 16 <= limit) ?? 4;
  const tk = (rows + R) * TK <= limit ? TK : 16;
  const pg = new TileProgram(64);
  readers(ctx, ["x", "w", "a", "b", ...(L.attrs.rate > 0 ? ["key"] : [])]);
  normFn(ctx, L);
  if (L.attrs.rate > 0) maskFn(ctx, L, "key");
  const aw: Gemm = { kind: "gemm", acc: "acc_aw", left: ["a", false], right: ["w", false], m: R, n: rows, ...tileFor(R, rows, pg.threads) };
  const { aa, w2 } = normProducts(L, rows, pg.threads);
  const np = { wa: aw, aa, w2 };
  const ax: Gemm = { ...aw, acc: "acc_ax", right: ["xd", false] };
  const xk: StagedTile = { name: "xd", rows: tk, cols: rows, row0: "k0", col0: "row0", rowEnd: L.inDim, colEnd: L.n, load: (k, i) => adapterInput(L, `${i} * ${L.inDim}u + ${k}`) };
  const normGroups = Math.ceil(L.out / rows);
  const groups = normGroups + Math.ceil(L.n / rows);
  const body = [
    `// DoRA statistics: workgroups 0..${normGroups - 1} compute n² for ${rows} output rows each, the rest x'·Aᵀ for ${rows} batch rows`,
    `let wid = ${ctx.workgroupIndex};`,
    `if (wid >= ${groups}u) { return; }`,
    `if (wid < ${normGroups}u) {`,
    `  let row0 = wid * ${rows}u;`,
    ...[aw, np.aa, np.w2].map((p) => `  ${pg.declare(p)}`),
    ...pg.loop(L.inDim, tk, [aTile(L, tk), wTile(L, tk, rows, "row0")], [aw, np.aa, np.w2]).map((l) => `  ${l}`),
    ...normEpilogue(pg, L, np, { product: aw, transposed: true }, rows, 0, limit, (_, o, n2) => [`if (${o} < ${L.out}u) { put(${L.stats.n2}u + ${o}, ${n2}); }`]).map((l) => `  ${l}`),
    ...(L.attrs.detach ? [] : pg.owned(aw, (l, o, v) => [`if (row0 + ${o} < ${L.out}u) { put(${L.stats.wa}u + (row0 + ${o}) * ${R}u + ${l}, ${v}); }`]).map((l) => `  ${l}`)),
    ...aaRows(pg, L, np, L.stats.aa, "wid == 0u").map((l) => `  ${l}`),
    `} else {`,
    `  let row0 = (wid - ${normGroups}u) * ${rows}u;`,
    `  ${pg.declare(ax)}`,
    ...pg.loop(L.inDim, tk, [aTile(L, tk), xk], [ax]).map((l) => `  ${l}`),
    ...pg.owned(ax, (l, i, v) => [`if (row0 + ${i} < ${L.n}u) { put(${L.stats.xa}u + (row0 + ${i}) * ${R}u + ${l}, ${v}); }`]).map((l) => `  ${l}`),
    `}`,
  ];
  const flops = 2 * L.inDim * (L.n * R + L.out * R + L.out + normGroups * R * R);
  return finish(ctx, L, pg, body, groups, flops);
}

/** The kernel body with its workgroup memory declared. */
export function finish(ctx: CustomBodyContext, L: Layer, pg: TileProgram, body: string[], workgroups: number, flops: number): CustomBody {
  // caught here, with the layer named, rather than by Dawn when the pipeline is created
  if (pg.smem > smemFloats(ctx)) {
    throw new CompileError(
      `${ctx.node.op}: a DoRA layer of ${L.out} outputs${L.inDim ? ` × ${L.inDim} inputs` : ""}, batch ${L.n}, rank ${L.rank}${L.attrs.detach ? "" : " (norm differentiated)"} needs ${pg.smem * 4} bytes of workgroup memory, more than the adapter's maxComputeWorkgroupStorageSize (${ctx.limits.maxComputeWorkgroupStorageSize}); use a smaller rank`,
    );
  }
  ctx.workgroupVar(`sm: array<f32, ${Math.max(1, pg.smem)}>`);
  return { body, workgroupSize: pg.threads, workgroups, flops };
}
