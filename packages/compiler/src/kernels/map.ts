// The elementwise kernel: one invocation per output element, every output of the group the
// same shape. Fused producers (elementwise chains, layout views, gathers, random bits) are
// computed inline by the expression emitter at the element's index.
import { CompileError } from "../errors.js";
import { ref } from "../fusion/group.js";
import { indexLets, ixVar } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { template } from "../wgsl/template.js";
import { ExprEmitter, Scope } from "./expr.js";
import { elementwiseFlops, type KernelBody, type KernelContext } from "./kernel.js";

const body = template(
  "map",
  `
let gid = ({{wgIndex}}) * {{size}}u + lid;
if (gid >= {{count}}u) { return; }
{{compute}}
{{stores}}
`,
);

export function mapKernel(ctx: KernelContext): KernelBody {
  const { group, io } = ctx;
  const shape = group.outputs[0]!.shape;
  for (const o of group.outputs) {
    if (o.shape.join() !== shape.join()) throw new CompileError(`map kernel k${group.id}: outputs of different shapes (${ref(o)})`, "kernels/map");
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const gid = ixVar("gid", { bound: count });
  const idx = indexLets(gid, shape, "i");
  const emitter = new ExprEmitter({ io, isLoaded: ctx.isLoaded, home: { idx, flat: gid, shape } });
  const scope = new Scope();
  const stores = group.outputs.map((o) => io.store(o, gid, emitter.value(o, idx, scope)));
  for (const [name, code] of emitter.functions) ctx.module.fn(name, code);
  const size = Math.min(256, ctx.target.limits.maxComputeInvocationsPerWorkgroup, ctx.target.limits.maxComputeWorkgroupSizeX);
  const compute = scope.lines;
  return {
    body: body({ wgIndex: WORKGROUP_INDEX, size: String(size), count: String(count), compute, stores }).split("\n"),
    workgroupSize: size,
    workgroups: Math.ceil(count / size),
    flops: elementwiseFlops(group.nodes, count),
    summary: `elementwise over ${group.outputs[0]!.dtype}[${shape}], one invocation per element`,
  };
}
