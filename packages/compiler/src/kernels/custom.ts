// Kernels for library-defined ops. A library author registers the op itself with core's
// `registerPrimitive` (kind "custom": shape rule, float64 reference, VJP) and its kernel here
// with `registerKernel`: WGSL statements computing ONE output element. The compiler wraps them
// in a function, gives them a reader per input (`x0(j0, j1, …)` returns input 0 at that index,
// with any fused elementwise producers computed inline — the prologue) and fuses elementwise
// consumers of the result into the same kernel (the epilogue), as for a matmul.
import type { Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { ref } from "../fusion/group.js";
import { indexLets, ixVar, opaque, reshapeIndex, sameIndex, symbolicIndex } from "../wgsl/ix.js";
import { WORKGROUP_INDEX } from "../wgsl/module.js";
import { template } from "../wgsl/template.js";
import { ExprEmitter, Scope } from "./expr.js";
import { elementwiseFlops, type KernelBody, type KernelContext } from "./kernel.js";
import type { KernelLimits } from "../limits.js";

export interface CustomKernel {
  /**
   * WGSL statements ending in `return <value>;` that compute the output element at index
   * `i0, i1, …` (u32). Input k is read with `x{k}(j0, j1, …)` (one u32 per dimension of that
   * input). `node` gives the shapes and attributes to specialize on.
   */
  element?(node: Node): string;
  /**
   * Full control instead of `element`: the whole entry point body, for kernels whose
   * invocations cooperate (workgroup memory, barriers). Inputs are materialized and read with
   * `ctx.input(k, flat)`, the output written with `ctx.output(flat, value)`; no producers or
   * consumers are fused.
   */
  body?(ctx: CustomBodyContext): CustomBody;
  /** Estimated floating-point operations per output element (for reports). Default 1. */
  flopsPerElement?(node: Node): number;
  /** Let elementwise producers of the inputs run inside the readers. Default true. */
  prologue?: boolean;
  /** Let elementwise consumers of the result run in the same kernel. Default true. */
  epilogue?: boolean;
}

export interface CustomBodyContext {
  node: Node;
  /** A WGSL expression reading input `k` at flat (row-major) element `flat` (a u32 expression). */
  input(k: number, flat: string): string;
  /** A statement writing `value` (of the op's dtype) at flat element `flat` of the output. */
  output(flat: string, value: string): string;
  /** Helper functions and workgroup variables for the module. */
  fn(name: string, code: string): void;
  workgroupVar(decl: string): void;
  /** `(wg.x + wg.y * nwg.x + …)`: the linear workgroup index, whatever way the grid was split. */
  workgroupIndex: string;
  limits: KernelLimits;
}

export interface CustomBody {
  /** Statements of `main` (builtins: `wg`, `nwg`, `lid` = local_invocation_index). */
  body: string[];
  workgroupSize: number;
  workgroups: number;
  flops?: number;
}

const kernels = new Map<string, CustomKernel>();

/** Registers the kernel of custom op `op` (whose primitive record core's registerPrimitive holds). */
export function registerKernel(op: string, kernel: CustomKernel, replace = false): void {
  if (kernels.has(op) && !replace) throw new CompileError(`registerKernel: op "${op}" already has a kernel`, "registerKernel");
  if (!kernel.element === !kernel.body) throw new CompileError(`registerKernel: op "${op}" needs exactly one of element(node) or body(ctx)`, "registerKernel");
  kernels.set(op, kernel);
}

export function findKernel(op: string): CustomKernel | undefined {
  return kernels.get(op);
}

/** Whether fusion may put producers (prologue) or consumers (epilogue) into the op's kernel. */
export function fusesInto(op: string, where: "prologue" | "epilogue"): boolean {
  const k = kernels.get(op);
  return !!k && !k.body && k[where] !== false;
}

const body = template(
  "custom",
  `
let gid = ({{wgIndex}}) * {{size}}u + lid;
if (gid >= {{count}}u) { return; }
{{index}}
let result = {{call}};
{{epilogue}}
`,
);

/** The lines of `text` without blank edges and without their common indentation. */
function dedent(text: string): string[] {
  const lines = text.replace(/^\s*\n/, "").trimEnd().split("\n");
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^\s*/.exec(l)![0].length));
  return lines.map((l) => l.slice(indent));
}

export function customKernel(ctx: KernelContext): KernelBody {
  const { group, io } = ctx;
  const op = group.anchors[0]!;
  const spec = kernels.get(op.op);
  if (!spec) throw new CompileError(`custom op "${op.op}" has no kernel: call registerKernel("${op.op}", …) from @dorafuse/compiler`, ref(op));
  if (spec.body) return bodyKernel(ctx, op, spec.body);
  const shape = op.shape;
  const count = shape.reduce((a, b) => a * b, 1);
  const names = shape.map((_, k) => `i${k}`);
  const gid = ixVar("gid", { bound: count });
  const idx = indexLets(gid, shape, "i");
  const emitter = new ExprEmitter({
    io,
    isLoaded: ctx.isLoaded,
    local: (n, at) => {
      if (n !== op) return undefined;
      if (!sameIndex(at, idx)) throw new CompileError(`custom kernel k${group.id} reads ${ref(op)} away from the element it computes`, "kernels/custom");
      return "result";
    },
    home: { idx, flat: gid, shape },
  });
  // the input functions see only their parameters: their emitter knows nothing of `gid`
  const inputs = new ExprEmitter({ io, isLoaded: ctx.isLoaded });
  op.inputs.forEach((x, k) => {
    const params = x.shape.map((_, d) => `j${d}`);
    const scope = new Scope();
    const v = inputs.value(x, symbolicIndex(x.shape, "j"), scope);
    const lines = [...scope.lines, `return ${v};`].map((l) => `  ${l}`);
    ctx.module.fn(`x${k}`, `fn x${k}(${params.map((p) => `${p}: u32`).join(", ")}) -> ${x.dtype === "bool" ? "bool" : x.dtype} {\n${lines.join("\n")}\n}`);
  });
  const fnName = `op_${op.op.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const userBody = dedent(spec.element!(op)).map((l) => `  ${l}`);
  ctx.module.fn(fnName, `fn ${fnName}(${names.map((p) => `${p}: u32`).join(", ")}) -> ${op.dtype} {\n${userBody.join("\n")}\n}`);
  // the element's index is declared at the top (the root scope's lines), before the call
  const top = new Scope();
  const call = `${fnName}(${idx.map((x) => emitter.ix(x, top)).join(", ")})`;
  const epi = new Scope(top, { barrier: true });
  const stores = group.outputs.map((o) => io.store(o, gid, emitter.value(o, reshapeIndex(idx, shape, o.shape), epi)));
  for (const [name, code] of [...inputs.functions, ...emitter.functions]) ctx.module.fn(name, code);
  const size = Math.min(256, ctx.target.limits.maxComputeInvocationsPerWorkgroup, ctx.target.limits.maxComputeWorkgroupSizeX);
  return {
    body: body({ wgIndex: WORKGROUP_INDEX, size: String(size), count: String(count), index: top.lines, call, epilogue: [...epi.lines, ...stores] }).split("\n"),
    workgroupSize: size,
    workgroups: Math.ceil(count / size),
    flops: count * (spec.flopsPerElement?.(op) ?? 1) + elementwiseFlops(group.nodes.filter((n) => n !== op && !op.inputs.includes(n)), count),
    summary: `custom op ${op.op} over ${op.dtype}[${shape}], one invocation per element`,
  };
}

function bodyKernel(ctx: KernelContext, op: Node, make: NonNullable<CustomKernel["body"]>): KernelBody {
  const b = make({
    node: op,
    input: (k, flat) => ctx.io.load(op.inputs[k]!, opaque(flat)),
    output: (flat, value) => ctx.io.store(op, opaque(flat), value),
    fn: (name, code) => ctx.module.fn(name, code),
    workgroupVar: (decl) => ctx.module.workgroupVar(decl),
    workgroupIndex: `(${WORKGROUP_INDEX})`,
    limits: ctx.target.limits,
  });
  return { ...b, flops: b.flops ?? 0, summary: `custom op ${op.op} (its own kernel body) over ${op.dtype}[${op.shape}]` };
}
