// The one path from a tensor op to the graph: find the innermost trace, bring the inputs into
// it, emit the primitive, and turn any shape or dtype error into one that names the user's
// call site. Also the runtime halves of the shape rules the types check: broadcasting (the
// frontend inserts `broadcast` so binary primitives see identical shapes), symbolic
// dimensions, scalars.
import type { Attrs, Node } from "../ir/node.js";
import type { DType } from "../ir/dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { broadcastShapes, fmtShape, sameShape } from "../ir/shapes.js";
import { currentContext, type TraceContext } from "../trace/context.js";
import { callSite } from "../trace/site.js";
import { Tensor } from "./tensor.js";
import type { Dim } from "./shape-types.js";

export type AnyTensor = Tensor<readonly Dim[], DType>;

/** Runs a shape rule; a ShapeError/DTypeError it throws gets the user's call site. */
export function atSite<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw withUserSite(e);
  }
}

export function withUserSite(e: unknown): unknown {
  if (e instanceof ShapeError && !e.site) return new ShapeError(e.message, e.op, callSite());
  if (e instanceof DTypeError && !e.site) return new DTypeError(e.message, e.op, callSite());
  return e;
}

/** Throws a ShapeError for `op` at the user's call site. */
export function shapeError(op: string, message: string): never {
  throw new ShapeError(`${op}: ${message}`, op, callSite());
}

export const fmtT = (t: { shape: readonly number[]; dtype: DType }): string => `${t.dtype}${fmtShape(t.shape)}`;

/** Emits `op` in the innermost trace and wraps the node as a tensor of that trace. */
export function emit(op: string, inputs: readonly AnyTensor[], attrs?: Attrs): AnyTensor {
  const ctx = currentContext(op);
  const nodes = inputs.map((t) => ctx.own(t));
  return wrap(emitNode(ctx, op, nodes, attrs), ctx);
}

export function emitNode(ctx: TraceContext, op: string, nodes: readonly Node[], attrs?: Attrs): Node {
  try {
    return ctx.builder.emit(op, nodes, attrs, ctx.options.sites ? callSite() : undefined);
  } catch (e) {
    throw withUserSite(e);
  }
}

export const wrap = (node: Node, ctx: TraceContext): AnyTensor => new Tensor(node, ctx);

/** A concrete shape from one that may name dimensions bound by the trace. */
export function resolveShape(op: string, shape: readonly Dim[]): number[] {
  const dims = currentContext(op).dims;
  return shape.map((d) => {
    if (typeof d === "number") {
      if (!Number.isInteger(d) || d < -1) shapeError(op, `dimension ${d} in ${JSON.stringify(shape)} is not a size`);
      return d;
    }
    const v = dims[d];
    if (v === undefined) {
      const known = Object.keys(dims);
      shapeError(op, `the named dimension "${d}" is not bound (bind it with trace(…, { dims: { ${d}: n } }); bound: ${known.length ? known.join(", ") : "none"})`);
    }
    return v;
  });
}

/** A scalar constant of `dtype`. */
export const scalar = (value: number, dtype: DType): AnyTensor => emit("constant", [], { value, dtype });

/** `value` filled into `shape`. */
export function fill(shape: readonly number[], value: number, dtype: DType): AnyTensor {
  const c = scalar(value, dtype);
  return shape.length === 0 ? c : emit("broadcast", [c], { shape: [...shape] });
}

/** `t` broadcast to exactly `shape` (a no-op when it already has it). */
export function broadcastTo(op: string, t: AnyTensor, shape: readonly number[]): AnyTensor {
  if (sameShape(t.shape, shape)) return t;
  const off = shape.length - t.shape.length;
  if (off < 0 || !t.shape.every((d, i) => d === 1 || d === shape[i + off])) {
    shapeError(op, `cannot broadcast ${fmtT(t)} to ${fmtShape(shape)}`);
  }
  return emit("broadcast", [t], { shape: [...shape] });
}

type Operand = AnyTensor | number;

/** The tensors of a binary op, numbers made constants of the other operand's dtype, broadcast alike. */
export function broadcastOperands(op: string, ...xs: Operand[]): AnyTensor[] {
  const first = xs.find((x): x is AnyTensor => typeof x !== "number");
  if (!first) throw new ShapeError(`${op}: needs at least one tensor operand`, op, callSite());
  const ts = xs.map((x) => (typeof x === "number" ? scalar(x, first.dtype) : x));
  const shape = atSite(() => broadcastShapes(op, ...ts.map((t) => t.shape)));
  return ts.map((t) => broadcastTo(op, t, shape));
}

/** A binary primitive with broadcasting; numbers take the tensor operand's dtype. */
export function binary(op: string, a: Operand, b: Operand): AnyTensor {
  const [x, y] = broadcastOperands(op, a, b);
  if (x!.dtype !== y!.dtype) {
    throw new DTypeError(`${op}: operands must have the same dtype (cast first): ${fmtT(x!)} and ${fmtT(y!)}`, op, callSite());
  }
  return emit(op, [x!, y!]);
}

export const unary = (op: string, x: AnyTensor): AnyTensor => emit(op, [x]);
