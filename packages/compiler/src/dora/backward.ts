// The two backward kernels of a DoRA layer. Every output element is owned by one workgroup
// that loops over the whole reduction axis, so no cross-workgroup sum is needed; each kernel
// gives its workgroups one of two roles, the heavier role first.
//
//   doraGradRows  role "rows" (64 output rows each, looping over the batch):
//                   dm = Σ_i gy⊙u / n,  dB = s·g⊙(gyᵀ·x'Aᵀ)
//                   (+ s·c⊙(W·Aᵀ + s·B·A·Aᵀ) and c = −g·dm·∂/n with the norm differentiated);
//                 role "gz" (64 batch rows each, looping over the outputs): gz·B, gz = gy⊙g.
//   doraGradCols  role "dA" (64 columns of `in` each, looping over the batch):
//                   dA = s·((gz·B)ᵀ·x' (+ (c⊙B)ᵀ·W + s·((c⊙B)ᵀ·B)·A));
//                 role "dx" (tiles of x): dx = gz·W + s·(gz·B)·A, or with dropout
//                   dx = gy·W + M⊙(gz·W − gy·W + s·(gz·B)·A).
import type { CustomBody, CustomBodyContext } from "../kernels/custom.js";
import { doraLayout, type DoraAttrs } from "@dorafuse/core";
import { adapterInput, f32, layerOf, maskFn, normFn, readers, smemFloats, type Layer } from "./layer.js";
import { finish } from "./forward.js";
import { mainTile, TileProgram, registerSide, tileFor, type Gemm, type RowDot } from "../kernels/tile-program.js";

/** Depth of one step over a reduction axis: 32, or 16 on adapters with little workgroup memory. */
const stepOf = (ctx: CustomBodyContext): number => (smemFloats(ctx) >= 8192 ? 32 : 16);

/** `dora_g(o)` = m[o] / n[o], n from the forward state's n². */
function scaleFn(ctx: CustomBodyContext, n2At: number): void {
  ctx.fn("dora_g", `fn dora_g(o: u32) -> f32 {\n  return in_m(o) / dora_norm(in_save(${n2At}u + o));\n}`);
}

export function rowsKernel(ctx: CustomBodyContext): CustomBody {
  const [gy, , b] = ctx.node.inputs;
  const [out, R] = b!.shape as [number, number];
  const a = ctx.node.attrs as unknown as DoraAttrs;
  // the rows never read x or W: the layout with in = 0 has every offset they use
  const L: Layer = { ...doraLayout(gy!.shape.reduce((p, d) => p * d, 1) / out, 0, out, R, a.detach), attrs: a };
  const N = L.n;
  readers(ctx, ["gy", "save", "b", "m"]);
  normFn(ctx, L);
  scaleFn(ctx, L.save.n2);
  ctx.fn("stage_gz", `fn stage_gz(e: u32, o: u32) -> f32 {\n  let v = in_gy(e) * dora_g(o);\n  put(${L.rows.gz}u + e, v);\n  return v;\n}`);
  const pg = new TileProgram(64);
  const rows = 64;
  // the loop stages gy and u (rows × TK each) and x'·Aᵀ (TK × r): shallower steps for large ranks
  const TK = [stepOf(ctx), 16, 8, 4].find((tk) => (2 * rows + R) * tk <= smemFloats(ctx)) ?? 4;
  const db: Gemm = { kind: "gemm", acc: "acc_db", left: ["gyt", false], right: ["xa", false], m: rows, n: R, ...tileFor(rows, R, pg.threads) };
  const dm: RowDot = { kind: "rowdot", acc: "acc_dm", left: ["gyt", false], right: ["ut", false], m: rows };
  const gzb: Gemm = { kind: "gemm", acc: "acc_gzb", left: ["gz", false], right: ["bk", false], m: rows, n: R, ...tileFor(rows, R, pg.threads) };
  const rowGroups = Math.ceil(out / rows);
  // g and c per row, after the loop's tiles (whose memory is free again)
  const gAt = pg.reserve(0, 2 * rows);
  const groups = rowGroups + Math.ceil(N / rows);
  const s = f32(a.scale);
  const slope = a.clamp ? "select(select(0.0, 0.5, n2 == 0.0), 1.0, n2 > 0.0)" : "1.0";
  const body = [
    `// DoRA backward, rows: workgroups 0..${rowGroups - 1} give dm and dB for ${rows} output rows, the rest gz·B for ${rows} batch rows`,
    `let wid = ${ctx.workgroupIndex};`,
    `if (wid >= ${groups}u) { return; }`,
    `if (wid < ${rowGroups}u) {`,
    `  let row0 = wid * ${rows}u;`,
    `  ${pg.declare(db)}`,
    `  ${pg.declare(dm)}`,
    ...pg.loop(N, TK, [
      { name: "gyt", rows, cols: TK, row0: "row0", col0: "k0", rowEnd: out, colEnd: N, load: (o, i) => `in_gy(${i} * ${out}u + ${o})` },
      { name: "ut", rows, cols: TK, row0: "row0", col0: "k0", rowEnd: out, colEnd: N, load: (o, i) => `in_save(${L.save.u}u + ${i} * ${out}u + ${o})` },
      { name: "xa", rows: TK, cols: R, row0: "k0", col0: "0u", rowEnd: N, colEnd: R, load: (i, l) => `in_save(${L.save.xa}u + ${i} * ${R}u + ${l})` },
    ], [db, dm]).map((l) => `  ${l}`),
    // per output row: g, dm (and c) — kept in workgroup memory for the dB elements
    ...pg.eachRow(dm, (q, _, slot) => [
      `let o = row0 + ${q};`,
      `var g = 0.0;`,
      `var c = 0.0;`,
      `if (o < ${out}u) {`,
      `  let n2 = in_save(${L.save.n2}u + o);`,
      `  let n = dora_norm(n2);`,
      `  g = in_m(o) / n;`,
      `  let dm = acc_dm[${slot}] / n;`,
      `  put(${L.rows.dm}u + o, dm);`,
      ...(a.detach ? [] : [`  c = -g * dm * ${slope} / n;`, `  put(${L.rows.c}u + o, c);`]),
      `}`,
      `sm[${gAt}u + ${q}] = g;`,
      `sm[${gAt + rows}u + ${q}] = c;`,
    ]).map((l) => `  ${l}`),
    `  workgroupBarrier();`,
    ...pg.owned(db, (row, col, v) => [
      `let o = row0 + ${row};`,
      `if (o < ${out}u) {`,
      `  var d = ${s} * sm[${gAt}u + ${row}] * ${v};`,
      ...(a.detach
        ? []
        : [
            `  var t = 0.0;`,
            // jj, not j: j is the element loop's counter, which ${col} reads
            `  for (var jj = 0u; jj < ${R}u; jj++) { t += in_b(o * ${R}u + jj) * in_save(${L.save.aa}u + jj * ${R}u + ${col}); }`,
            `  d += ${s} * sm[${gAt + rows}u + ${row}] * (in_save(${L.save.wa}u + o * ${R}u + ${col}) + ${s} * t);`,
          ]),
      `  put(${L.rows.db}u + o * ${R}u + ${col}, d);`,
      `}`,
    ]).map((l) => `  ${l}`),
    `} else {`,
    `  let row0 = (wid - ${rowGroups}u) * ${rows}u;`,
    `  ${pg.declare(gzb)}`,
    ...pg.loop(out, TK, [
      // each element of gz = gy⊙g is staged exactly once by this role: write it for doraGradCols
      { name: "gz", rows, cols: TK, row0: "row0", col0: "k0", rowEnd: N, colEnd: out, load: (i, o) => `stage_gz(${i} * ${out}u + ${o}, ${o})` },
      { name: "bk", rows: TK, cols: R, row0: "k0", col0: "0u", rowEnd: out, colEnd: R, load: (o, l) => `in_b(${o} * ${R}u + ${l})` },
    ], [gzb]).map((l) => `  ${l}`),
    ...pg.owned(gzb, (row, col, v) => [`if (row0 + ${row} < ${N}u) { put(${L.rows.gzb}u + (row0 + ${row}) * ${R}u + ${col}, ${v}); }`]).map((l) => `  ${l}`),
    `}`,
  ];
  return finish(ctx, L, pg, body, groups, 2 * N * out * (2 * R + 1));
}

/**
 * Columns of (c⊙B)ᵀ·B staged at a time: all r where they fit beside the tiles that compute
 * them and the tiles that multiply them into dA, else the largest power of two that does.
 */
function normChunk(R: number, tn: number, tk: number, limit: number): number {
  const fits = (cc: number) => (R + tn + cc) * tk <= limit && R * cc + (R + tn) * Math.min(tk, cc) <= limit;
  return [R, 64, 32, 16, 8, 4, 2, 1].find((cc) => cc <= R && fits(cc)) ?? 1;
}

export function colsKernel(ctx: CustomBodyContext): CustomBody {
  const [, , , x, w, aIn] = ctx.node.inputs;
  const L = layerOf(ctx.node, x!, w!, aIn!);
  const { n: N, inDim: IN, out: OUT, rank: R, attrs: a } = L;
  const dropout = a.rate > 0;
  const limit = smemFloats(ctx);
  const tm = N <= 32 ? 32 : 64;
  const tn = IN <= 32 ? 32 : 64;
  // the dA role stages r × TK of gz·B beside TK × tn of x', the dx role tm × TK (twice with dropout) beside TK × tn of W
  const TK = [stepOf(ctx), 16, 8, 4].find((tk) => Math.max(R + tn, (dropout ? 2 : 1) * tm + tn) * tk <= limit) ?? 4;
  readers(ctx, ["gy", "save", "rows", "x", "w", "a", "b", "m", ...(dropout ? ["key"] : [])]);
  normFn(ctx, L);
  if (dropout) maskFn(ctx, L, "key");
  const main = mainTile(tm, tn);
  const pg = new TileProgram((tm / main.rm) * (tn / main.rn));
  const s = f32(a.scale);
  const tkR = Math.min(TK, R);
  const gb = (i: string, l: string) => `in_rows(${L.rows.gzb}u + ${i} * ${R}u + ${l})`;
  // role dA: rows of dA (rank) × tn columns of `in`
  const da: Gemm = { kind: "gemm", acc: "acc_da", left: ["gbt", false], right: ["xd", false], m: R, n: tn, rm: registerSide(R), rn: registerSide(tn) };
  // (c⊙B)ᵀ·B is r × r: it is staged `cc` columns at a time (all r where they fit), so the
  // differentiated norm's term s·((c⊙B)ᵀ·B)·A fits the workgroup memory at any rank
  const cc = normChunk(R, tn, TK, limit);
  const tkc = Math.min(TK, cc);
  const chunked = cc < R;
  const cb: Gemm = { kind: "gemm", acc: "acc_cb", left: ["cbt", false], right: ["bk", false], m: R, n: cc, ...tileFor(R, cc, pg.threads) };
  const cbt = { name: "cbt", rows: R, cols: TK, row0: "0u", col0: "k0", rowEnd: R, colEnd: OUT, load: (l: string, o: string) => `in_rows(${L.rows.c}u + ${o}) * in_b(${o} * ${R}u + ${l})` };
  const bk = { name: "bk", rows: TK, cols: cc, row0: "k0", col0: "j0", rowEnd: OUT, colEnd: R, load: (o: string, j: string) => `in_b(${o} * ${R}u + ${j})` };
  const wk = (name: string) => ({ name, rows: TK, cols: tn, row0: "k0", col0: "col0", rowEnd: OUT, colEnd: IN, load: (o: string, k: string) => `in_w(${o} * ${IN}u + ${k})` });
  const ak = (name: string, tk: number) => ({ name, rows: tk, cols: tn, row0: "k0", col0: "col0", rowEnd: R, colEnd: IN, load: (l: string, k: string) => `in_a(${l} * ${IN}u + ${k})` });
  const cbW: Gemm = { ...da, left: ["cbt", false], right: ["wk", false] };
  const cbAt = 0;
  const indent = (lines: string[], by = "  ") => lines.map((l) => `${by}${l}`);
  const norm = a.detach
    ? []
    : [
        // (c⊙B)ᵀ·W: with the first columns of (c⊙B)ᵀ·B from the same tiles, unless they come in chunks
        ...(chunked ? indent(pg.loop(OUT, TK, [cbt, wk("wk")], [cbW])) : []),
        `  ${pg.declare(cb)}`,
        `  for (var j0 = 0u; j0 < ${R}u; j0 += ${cc}u) {`,
        `    ${pg.reset(cb)}`,
        ...indent(pg.loop(OUT, TK, chunked ? [cbt, bk] : [cbt, wk("wk"), bk], chunked ? [cb] : [cbW, cb]), "    "),
        ...indent(pg.owned(cb, (row, col, v) => [`sm[${cbAt}u + (${row}) * ${cc}u + ${col}] = ${v};`]), "    "),
        `    workgroupBarrier();`,
        ...indent(pg.loop(cc, tkc, [
          { name: "cbs", rows: R, cols: tkc, row0: "0u", col0: "k0", rowEnd: R, colEnd: cc, load: (l, j) => `${s} * sm[${cbAt}u + ${l} * ${cc}u + ${j}]` },
          { name: "ak3", rows: tkc, cols: tn, row0: "j0 + k0", col0: "col0", rowEnd: R, colEnd: IN, load: (l, k) => `in_a(${l} * ${IN}u + ${k})` },
        ], [{ ...da, left: ["cbs", false], right: ["ak3", false] }], cbAt + R * cc), "    "),
        `  }`,
      ];
  // role dx: tm × tn tiles of dx
  const q: Gemm = { kind: "gemm", acc: "acc_q", left: ["gz", false], right: ["wk", false], m: tm, n: tn, ...main };
  const p: Gemm = { ...q, acc: "acc_p", left: ["gy", false] };
  const aGroups = Math.ceil(IN / tn);
  const nTn = Math.ceil(IN / tn);
  const groups = aGroups + Math.ceil(N / tm) * nTn;
  const body = [
    `// DoRA backward, columns: workgroups 0..${aGroups - 1} give dA for ${tn} columns of in, the rest ${tm} × ${tn} tiles of dx`,
    `let wid = ${ctx.workgroupIndex};`,
    `if (wid >= ${groups}u) { return; }`,
    `if (wid < ${aGroups}u) {`,
    `  let col0 = wid * ${tn}u;`,
    `  ${pg.declare(da)}`,
    ...pg.loop(N, TK, [
      { name: "gbt", rows: R, cols: TK, row0: "0u", col0: "k0", rowEnd: R, colEnd: N, load: (l, i) => gb(i, l) },
      { name: "xd", rows: TK, cols: tn, row0: "k0", col0: "col0", rowEnd: N, colEnd: IN, load: (i, k) => adapterInput(L, `${i} * ${IN}u + ${k}`) },
    ], [da]).map((l) => `  ${l}`),
    ...norm,
    ...pg.owned(da, (row, col, v) => [`let gk = col0 + ${col};`, `if (${row} < ${R}u && gk < ${IN}u) { put(${L.cols.da}u + (${row}) * ${IN}u + gk, ${s} * ${v}); }`]).map((l) => `  ${l}`),
    `} else {`,
    `  let t = wid - ${aGroups}u;`,
    `  let row0 = (t / ${nTn}u) * ${tm}u;`,
    `  let col0 = (t % ${nTn}u) * ${tn}u;`,
    `  ${pg.declare(q)}`,
    ...(dropout ? [`  ${pg.declare(p)}`] : []),
    ...pg.loop(OUT, TK, [
      { name: "gz", rows: tm, cols: TK, row0: "row0", col0: "k0", rowEnd: N, colEnd: OUT, load: (i, o) => `in_rows(${L.rows.gz}u + ${i} * ${OUT}u + ${o})` },
      ...(dropout ? [{ name: "gy", rows: tm, cols: TK, row0: "row0", col0: "k0", rowEnd: N, colEnd: OUT, load: (i: string, o: string) => `in_gy(${i} * ${OUT}u + ${o})` }] : []),
      wk("wk"),
    ], [q, ...(dropout ? [p] : [])]).map((l) => `  ${l}`),
    ...pg.loop(R, tkR, [
      { name: "gb", rows: tm, cols: tkR, row0: "row0", col0: "k0", rowEnd: N, colEnd: R, load: (i, l) => `${s} * ${gb(i, l)}` },
      ak("ak", tkR),
    ], [{ ...q, left: ["gb", false], right: ["ak", false] }]).map((l) => `  ${l}`),
    ...pg.owned(q, (row, col, v, index) => [
      `let gi = row0 + ${row};`,
      `let gk = col0 + ${col};`,
      `if (gi < ${N}u && gk < ${IN}u) {`,
      dropout
        ? `  put(${L.cols.dx}u + gi * ${IN}u + gk, acc_p[${index}] + dora_mask(gi * ${IN}u + gk) * (${v} - acc_p[${index}]));`
        : `  put(${L.cols.dx}u + gi * ${IN}u + gk, ${v});`,
      `}`,
    ]).map((l) => `  ${l}`),
    `}`,
  ];
  const flops = 2 * N * OUT * IN * (dropout ? 2 : 1) + 4 * N * R * IN + (a.detach ? 0 : 2 * aGroups * (R * tn * OUT + R * R * OUT + R * R * tn));
  return finish(ctx, L, pg, body, groups, flops);
}
