// The tiled matmul: C[b, m, n] = Σ_k A[b, m, k] · B[b, k, n]. Each workgroup computes a
// TM×TN tile of C for one batch index, stepping over K in TK-deep slices staged in workgroup
// memory; each invocation accumulates an RM×RN register tile. Operands are produced by the
// expression emitter while staging (a transpose or an elementwise producer costs no extra
// pass), and the epilogue computes the group's elementwise outputs from the accumulator.
import type { Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { ref } from "../fusion/group.js";
import { add, indexLets, ixVar, lit, mul, reshapeIndex, sameIndex, type Index, type Ix } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { template } from "../wgsl/template.js";
import { accumulatorType, fromAccumulator, toAccumulator } from "../wgsl/types.js";
import { ExprEmitter, Scope } from "./expr.js";
import { elementwiseFlops, type KernelBody, type KernelContext } from "./kernel.js";
import { chooseTile, threadsOf } from "./tiles.js";

const stage = template(
  "matmul-stage",
  `
for (var e = lid; e < {{count}}u; e += {{threads}}u) {
  let {{rowVar}} = {{rowBase}} + e / {{cols}}u;
  let {{colVar}} = {{colBase}} + e % {{cols}}u;
  var v = {{zero}};
  if ({{inBounds}}) {
    {{compute}}
    v = {{value}};
  }
  {{tile}}[e] = v;
}
`,
);

const frame = template(
  "matmul",
  `
let wid = {{wgIndex}};
if (wid >= {{groups}}u) { return; }
let tile_n = wid % {{nTiles}}u;
let tile_m = (wid / {{nTiles}}u) % {{mTiles}}u;
let batch = wid / {{mnTiles}}u;
{{batchIndex}}
let tx = lid % {{tx}}u;
let ty = lid / {{tx}}u;
var acc: array<{{acc}}, {{regs}}>;
for (var k0 = 0u; k0 < {{k}}u; k0 += {{tk}}u) {
  {{stageA}}
  {{stageB}}
  workgroupBarrier();
  for (var kk = 0u; kk < {{tk}}u; kk++) {
    for (var i = 0u; i < {{rm}}u; i++) {
      let a = tile_a[(ty * {{rm}}u + i) * {{tk}}u + kk];
      for (var j = 0u; j < {{rn}}u; j++) {
        acc[i * {{rn}}u + j] += a * tile_b[kk * {{tn}}u + tx * {{rn}}u + j];
      }
    }
  }
  workgroupBarrier();
}
for (var i = 0u; i < {{rm}}u; i++) {
  for (var j = 0u; j < {{rn}}u; j++) {
    let m = tile_m * {{tm}}u + ty * {{rm}}u + i;
    let n = tile_n * {{tn}}u + tx * {{rn}}u + j;
    if (m < {{m}}u && n < {{n}}u) {
      {{epilogue}}
    }
  }
}
`,
);

export function matmulKernel(ctx: KernelContext): KernelBody {
  const { group, io, target } = ctx;
  const c = group.anchors[0]!;
  const [a, b] = c.inputs as [Node, Node];
  const rank = c.shape.length;
  const batchShape = c.shape.slice(0, rank - 2);
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const [m, n] = [c.shape[rank - 2]!, c.shape[rank - 1]!];
  const k = a.shape[rank - 1]!;
  const acc = accumulatorType(c.dtype);
  const t = chooseTile(target.limits, batch, m, n, k, target.parallelism);
  const threads = threadsOf(t);
  const mTiles = Math.ceil(m / t.tm);
  const nTiles = Math.ceil(n / t.tn);

  const bIdx = indexLets(ixVar("batch", { bound: batch }), batchShape, "b");
  const home: Index = [...bIdx, m === 1 ? lit(0) : ixVar("m", { bound: m }), n === 1 ? lit(0) : ixVar("n", { bound: n })];
  // the batch index is declared at the top (the root scope's lines), read by every block
  const top = new Scope();

  const emitter = new ExprEmitter({
    io,
    isLoaded: ctx.isLoaded,
    local: (node, idx) => {
      if (node !== c) return undefined;
      if (!sameIndex(idx, home)) throw new CompileError(`matmul kernel k${group.id} reads ${ref(c)} at [${idx}], not at the element it computes`, "kernels/matmul");
      return fromAccumulator(c.dtype, acc, "acc[i * " + t.rn + "u + j]");
    },
    home: { idx: home, flat: flatHome(batchShape, m, n), shape: c.shape },
  });
  const staged = (x: Node, tile: string, rowVar: string, colVar: string, rows: number, cols: number, rowBase: string, colBase: string, rowLim: number, colLim: number) => {
    const scope = new Scope(top, { barrier: true, declares: [rowVar, colVar] });
    const v = emitter.value(x, [...bIdx, ixVar(rowVar, { bound: rowLim }), ixVar(colVar, { bound: colLim })], scope);
    return stage({
      count: String(rows * cols),
      threads: String(threads),
      rowVar,
      colVar,
      rowBase,
      colBase,
      cols: String(cols),
      zero: acc === "f32" ? "0.0" : acc === "i32" ? "0i" : "0u",
      inBounds: `${rowVar} < ${rowLim}u && ${colVar} < ${colLim}u`,
      compute: scope.lines,
      value: toAccumulator(x.dtype, acc, v),
      tile,
    });
  };
  const stageA = staged(a, "tile_a", "am", "ak", t.tm, t.tk, `tile_m * ${t.tm}u`, "k0", m, k);
  const stageB = staged(b, "tile_b", "bk", "bn", t.tk, t.tn, "k0", `tile_n * ${t.tn}u`, k, n);
  const epi = new Scope(top, { barrier: true, declares: ["m", "n"] });
  const flat = flatHome(batchShape, m, n);
  // an epilogue output may be a reshape of the product (same elements, same order)
  const stores = group.outputs.map((o) => io.store(o, flat, emitter.value(o, reshapeIndex(home, c.shape, o.shape), epi)));
  ctx.module.workgroupVar(`tile_a: array<${acc}, ${t.tm * t.tk}>`);
  ctx.module.workgroupVar(`tile_b: array<${acc}, ${t.tk * t.tn}>`);
  for (const [name, code] of emitter.functions) ctx.module.fn(name, code);
  return {
    body: frame({
      wgIndex: WORKGROUP_INDEX,
      groups: String(batch * mTiles * nTiles),
      nTiles: String(nTiles),
      mTiles: String(mTiles),
      mnTiles: String(mTiles * nTiles),
      batchIndex: top.lines,
      tx: String(t.tn / t.rn),
      acc,
      regs: String(t.rm * t.rn),
      k: String(k),
      tk: String(t.tk),
      stageA,
      stageB,
      rm: String(t.rm),
      rn: String(t.rn),
      tm: String(t.tm),
      tn: String(t.tn),
      m: String(m),
      n: String(n),
      epilogue: [...epi.lines, ...stores],
    }).split("\n"),
    workgroupSize: threads,
    workgroups: batch * mTiles * nTiles,
    flops: 2 * batch * m * n * k + elementwiseFlops(group.nodes.filter((x) => x !== c), batch * m * n),
    summary: `tiled matmul ${batch > 1 ? `${batch}× ` : ""}[${m}×${k}]·[${k}×${n}], tile ${t.tm}×${t.tn}×${t.tk}, ${t.rm}×${t.rn} per invocation`,
  };
}

/** Flat offset of (batch…, m, n) in the output. */
function flatHome(batchShape: readonly number[], m: number, n: number): Ix {
  const rowCol = add(mul(ixVar("m", { bound: m }), n), ixVar("n", { bound: n }));
  return batchShape.length === 0 ? rowCol : add(mul(ixVar("batch"), m * n), rowCol);
}
