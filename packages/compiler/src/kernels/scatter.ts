// scatterAdd without atomics. WGSL has no float atomics, and atomics would make the sum's
// order (and so its rounding) vary between runs; instead each invocation owns one output
// element and loops over every index position, adding the updates whose (clamped) index
// lands on it, in index order. The result is deterministic and equals the interpreter's
// sequential sum; the cost is (output elements × index count), fine for embedding
// gradients at the sizes a training step has.
import type { Node } from "@dorafuse/core";
import { indexLets, ixVar, lit, min, opaque } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { template } from "../wgsl/template.js";
import { accumulatorType, fromAccumulator, toAccumulator } from "../wgsl/types.js";
import { ExprEmitter, Scope } from "./expr.js";
import type { KernelBody, KernelContext } from "./kernel.js";

const body = template(
  "scatter",
  `
let gid = ({{wgIndex}}) * {{size}}u + lid;
if (gid >= {{count}}u) { return; }
{{hoisted}}
var acc = {{zero}};
for (var p = 0u; p < {{positions}}u; p++) {
  {{indexCompute}}
  if ({{target}} == {{own}}) {
    {{updateCompute}}
    acc = acc + {{update}};
  }
}
{{store}}
`,
);

export function scatterKernel(ctx: KernelContext): KernelBody {
  const { group, io } = ctx;
  const s = group.anchors[0]!;
  const [ind, upd] = s.inputs as [Node, Node];
  const axis = s.attrs.axis as number;
  const shape = s.shape;
  const n = shape[axis]!;
  const count = shape.reduce((a, b) => a * b, 1);
  const positions = ind.shape.reduce((a, b) => a * b, 1);
  const gid = ixVar("gid", { bound: count });
  const oIdx = indexLets(gid, shape, "i");
  const pIdx = indexLets(ixVar("p", { bound: positions }), ind.shape, "p");
  const acc = accumulatorType(s.dtype);

  const emitter = new ExprEmitter({ io, isLoaded: ctx.isLoaded });
  const top = new Scope();
  const loop = new Scope(top, { declares: ["p"] });
  const iv = emitter.value(ind, pIdx, loop);
  const target = ind.dtype === "u32" ? min(opaque(iv), lit(n - 1)) : opaque(`u32(clamp(${iv}, 0i, ${n - 1}i))`, n);
  const own = emitter.ix(oIdx[axis]!, top);
  const hit = new Scope(loop);
  const uIdx = [...oIdx.slice(0, axis), ...pIdx, ...oIdx.slice(axis + 1)];
  const u = emitter.value(upd, uIdx, hit);
  const store = io.store(s, gid, fromAccumulator(s.dtype, acc, "acc"));
  for (const [name, code] of emitter.functions) ctx.module.fn(name, code);
  const size = Math.min(256, ctx.target.limits.maxComputeInvocationsPerWorkgroup, ctx.target.limits.maxComputeWorkgroupSizeX);
  return {
    body: body({
      wgIndex: WORKGROUP_INDEX,
      size: String(size),
      count: String(count),
      zero: acc === "f32" ? "0.0" : acc === "i32" ? "0i" : "0u",
      hoisted: top.lines,
      positions: String(positions),
      indexCompute: loop.lines,
      target: target.text,
      own,
      updateCompute: hit.lines,
      update: toAccumulator(upd.dtype, acc, u),
      store,
    }).split("\n"),
    workgroupSize: size,
    workgroups: Math.ceil(count / size),
    flops: count * positions,
    summary: `scatterAdd into ${s.dtype}[${shape}] along axis ${axis}: each element sums its ${positions} candidate updates in index order`,
  };
}
