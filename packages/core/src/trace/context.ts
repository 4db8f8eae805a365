// The tracing context: which builder ops emit into, how symbolic dimensions are bound, and
// how a tensor of an enclosing trace enters a nested one. Contexts nest strictly (trace →
// grad → checkpoint …), so any open context other than the innermost is an ancestor; a
// tensor of an ancestor used inside becomes an extra input of the inner graph (a capture),
// fed by the outer tensor when the inner graph is inlined back.
import { GraphBuilder } from "../ir/builder.js";
import type { Node } from "../ir/node.js";
import { TraceError } from "../errors.js";

/** What a context needs to know of a tensor: its node and the context that made it. */
export interface TracerLike {
  readonly node: Node;
  readonly ctx: TraceContext;
}

export interface Capture {
  /** The tensor of an enclosing trace. */
  readonly outer: TracerLike;
  /** The input node standing for it in this trace. */
  readonly inner: Node;
}

export interface ContextOptions {
  /** Bindings of named dimensions. */
  readonly dims: Readonly<Record<string, number>>;
  /** Record every node's call site (slower); errors always name it. */
  readonly sites: boolean;
  /** Whether tensors of enclosing traces may be used (nested transforms) or not (`trace`). */
  readonly captures: boolean;
  /** For messages: "trace", "grad", "checkpoint", … */
  readonly what: string;
}

export class TraceContext {
  readonly builder = new GraphBuilder();
  readonly captures: Capture[] = [];
  private readonly captured = new Map<Node, Node>();
  open = true;

  constructor(
    readonly options: ContextOptions,
    readonly parent?: TraceContext,
  ) {}

  get dims(): Readonly<Record<string, number>> {
    return this.options.dims;
  }

  /** The node standing for `t` in this context, capturing it when it belongs to an ancestor. */
  own(t: TracerLike): Node {
    if (t.ctx === this) return t.node;
    if (!t.ctx.open) {
      throw new TraceError(
        `${this.options.what}: a tensor of a finished ${t.ctx.options.what} was used (${t.node.dtype}[${t.node.shape.join(",")}], %${t.node.id}); ` +
          "tensors must not escape the function being traced",
      );
    }
    if (!this.options.captures) {
      throw new TraceError(
        `${this.options.what}: the function uses a tensor of an enclosing ${t.ctx.options.what} (${t.node.dtype}[${t.node.shape.join(",")}]); ` +
          "pass it as an argument instead",
      );
    }
    let inner = this.captured.get(t.node);
    if (!inner) {
      inner = this.builder.input(`capture%${t.node.id}`, t.node.shape, t.node.dtype);
      this.captured.set(t.node, inner);
      this.captures.push({ outer: t, inner });
    }
    return inner;
  }
}

const stack: TraceContext[] = [];

/** The innermost open context; throws when ops are used outside any trace. */
export function currentContext(op?: string): TraceContext {
  const top = stack[stack.length - 1];
  if (!top) {
    throw new TraceError(
      `${op ?? "tensor op"}: no active trace. Tensors are tracers: build them inside trace(fn, specs) or evaluate(fn, values)`,
    );
  }
  return top;
}

/** Whether any trace is active. */
export const isTracing = (): boolean => stack.length > 0;

/** Runs `fn` with `ctx` as the innermost context, closing it afterwards. */
export function withContext<T>(ctx: TraceContext, fn: () => T): T {
  stack.push(ctx);
  try {
    return fn();
  } finally {
    stack.pop();
    ctx.open = false;
  }
}

/** A fresh context nested in the current one (grad, vjp, checkpoint, customVjp bodies). */
export function nestedContext(what: string, captures = true): TraceContext {
  const parent = currentContext(what);
  return new TraceContext({ ...parent.options, captures, what }, parent);
}
