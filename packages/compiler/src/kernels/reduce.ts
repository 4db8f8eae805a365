// The row kernel: reductions over the same rows, and the values that read their results back
// over the row (softmax, layerNorm, row norms), in one kernel. A row is the set of elements a
// reduction combines; T invocations share a row (T a power of two, short rows share a
// workgroup with other rows), each strides over the row accumulating privately, then a tree
// reduction in workgroup memory combines them. Each reduction is a phase; a later phase (and
// the final element-wise pass that writes broadcast consumers) reads earlier results from
// registers. Fused producers are recomputed per phase rather than stored.
import type { Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { ref } from "../fusion/group.js";
import { indexLets, ixVar, sameIndex, type Ix } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { template } from "../wgsl/template.js";
import { accumulatorType, fromAccumulator, reduceCombine, reduceIdentity, toAccumulator } from "../wgsl/types.js";
import { ExprEmitter, Scope } from "./expr.js";
import { elementwiseFlops, nextPow2, type KernelBody, type KernelContext } from "./kernel.js";

const phase = template(
  "reduce-phase",
  `
// phase {{n}}: {{what}}
{{hoisted}}
var acc{{n}} = {{identity}};
if (live) {
  for (var j = lane; j < {{rowLen}}u; j += {{threads}}u) {
    {{compute}}
    acc{{n}} = {{combine}};
  }
}
red_{{acc}}[lid] = acc{{n}};
workgroupBarrier();
for (var s = {{half}}u; s > 0u; s >>= 1u) {
  if (lane < s) { red_{{acc}}[lid] = {{combineTree}}; }
  workgroupBarrier();
}
let res{{n}} = {{result}};
workgroupBarrier();
`,
);

const rowPass = template(
  "reduce-row-pass",
  `
{{hoisted}}
if (live) {
  for (var j = lane; j < {{rowLen}}u; j += {{threads}}u) {
    {{compute}}
    {{stores}}
  }
}
`,
);

const frame = template(
  "reduce",
  `
let wid = {{wgIndex}};
let slot = lid / {{threads}}u;
let lane = lid % {{threads}}u;
let row = wid * {{rowsPerGroup}}u + slot;
let live = row < {{rows}}u;
{{rowIndex}}
{{phases}}
{{elementPass}}
{{rowStores}}
`,
);


export function reduceKernel(ctx: KernelContext): KernelBody {
  const { group, io } = ctx;
  const anchors = group.anchors;
  const r0 = anchors[0]!;
  const e = r0.inputs[0]!.shape;
  const axes = r0.attrs.axes as number[];
  const kept = e.map((_, k) => k).filter((k) => !axes.includes(k));
  const kShape = kept.map((k) => e[k]!);
  const rShape = axes.map((k) => e[k]!);
  const rows = kShape.reduce((a, b) => a * b, 1);
  const rowLen = rShape.reduce((a, b) => a * b, 1);
  const limit = Math.min(256, ctx.target.limits.maxComputeInvocationsPerWorkgroup, ctx.target.limits.maxComputeWorkgroupSizeX);
  const size = 2 ** Math.floor(Math.log2(limit));
  // a CPU adapter pays for every barrier round: give each invocation several elements there
  const perInvocation = ctx.target.parallelism < 16 ? 8 : 1;
  const threads = Math.min(size, nextPow2(Math.ceil(rowLen / perInvocation)));
  const rowsPerGroup = size / threads;

  // kept dimensions come from the row number, reduced ones from the loop counter j
  // (`row` has no bound: past the last row, lanes compute but store nothing)
  const row = ixVar("row");
  const kIdx = indexLets(row, kShape, "k");
  const rIdx = indexLets(ixVar("j", { bound: rowLen }), rShape, "r");
  const eIdx: Ix[] = e.map((_, k) => (axes.includes(k) ? rIdx[axes.indexOf(k)]! : kIdx[kept.indexOf(k)]!));

  const results = new Map<Node, string>();
  const emitter = new ExprEmitter({
    io,
    isLoaded: ctx.isLoaded,
    local: (n, idx) => {
      const r = results.get(n);
      if (r === undefined) return undefined;
      if (!sameIndex(idx, kIdx)) throw new CompileError(`row kernel k${group.id} reads ${ref(n)} at [${idx}], not at its row [${kIdx}]`, "kernels/reduce");
      return r;
    },
  });
  const top = new Scope();
  const accTypes = new Set<string>();
  const phases: string[] = [];
  anchors.forEach((a, n) => {
    const s = spaceKey(a);
    if (s !== `${e}/${axes}`) throw new CompileError(`row kernel k${group.id}: ${ref(a)} reduces ${s}, not ${e}/${axes}`, "kernels/reduce");
    const op = a.op === "reduceSum" ? "sum" : a.op === "reduceMax" ? "max" : undefined;
    if (!op) throw new CompileError(`row kernel k${group.id}: unknown reduction ${a.op}`, "kernels/reduce");
    const acc = accumulatorType(a.dtype);
    accTypes.add(acc);
    const pass = new Scope(top, { barrier: true });
    const loop = new Scope(pass, { declares: ["j"] });
    const v = emitter.value(a.inputs[0]!, eIdx, loop);
    phases.push(
      phase({
        n: String(n),
        what: `${ref(a)} = ${a.op} over [${axes}] of ${ref(a.inputs[0]!)}`,
        hoisted: pass.lines,
        identity: reduceIdentity(op, acc),
        rowLen: String(rowLen),
        threads: String(threads),
        compute: loop.lines,
        combine: reduceCombine(op, `acc${n}`, toAccumulator(a.dtype, acc, v)),
        acc,
        half: String(threads >> 1),
        combineTree: reduceCombine(op, `red_${acc}[lid]`, `red_${acc}[lid + s]`),
        result: fromAccumulator(a.dtype, acc, `red_${acc}[slot * ${threads}u]`),
      }),
    );
    results.set(a, `res${n}`);
  });
  for (const t of accTypes) ctx.module.workgroupVar(`red_${t}: array<${t}, ${size}>`);

  const elementOuts = group.outputs.filter((o) => !results.has(o) && o.shape.join() === e.join() && axes.length > 0);
  const rowOuts = group.outputs.filter((o) => !elementOuts.includes(o));
  let elementPass: string[] = [];
  if (elementOuts.length) {
    const pass = new Scope(top, { barrier: true });
    const loop = new Scope(pass, { declares: ["j"] });
    const stores = elementOuts.map((o) => io.store(o, emitter.flat(eIdx, e), emitter.value(o, eIdx, loop)));
    elementPass = rowPass({ rowLen: String(rowLen), threads: String(threads), hoisted: pass.lines, compute: loop.lines, stores }).split("\n");
  }
  const rowScope = new Scope(top, { barrier: true });
  const rowStores = rowOuts.map((o) => {
    if (o.shape.join() !== kShape.join()) throw new CompileError(`row kernel k${group.id}: output ${ref(o)} [${o.shape}] is neither [${e}] nor the row shape [${kShape}]`, "kernels/reduce");
    return io.store(o, row, emitter.value(o, kIdx, rowScope));
  });
  const rowBlock = rowStores.length ? [`if (live && lane == 0u) {`, ...[...rowScope.lines, ...rowStores].map((l) => `  ${l}`), `}`] : [];
  for (const [name, code] of emitter.functions) ctx.module.fn(name, code);
  // values hoisted out of the loops read only the row's index; for rows past the end they
  // read out of range, which WebGPU's robust buffer access makes harmless, and go unused
  return {
    body: frame({
      wgIndex: WORKGROUP_INDEX,
      threads: String(threads),
      rowsPerGroup: String(rowsPerGroup),
      rows: String(rows),
      rowIndex: top.lines,
      phases,
      elementPass,
      rowStores: rowBlock,
    }).split("\n"),
    workgroupSize: size,
    workgroups: Math.ceil(rows / rowsPerGroup),
    flops: elementwiseFlops(group.nodes, rows * rowLen),
    summary: `${anchors.length} reduction${anchors.length > 1 ? "s" : ""} over rows of ${rowLen} (${rows} rows, ${threads} invocations per row, ${rowsPerGroup} rows per workgroup)`,
  };
}

const spaceKey = (a: Node) => `${a.inputs[0]!.shape}/${a.attrs.axes as number[]}`;

