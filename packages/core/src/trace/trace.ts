// trace(fn, specs): calls `fn` on tracers and records the hash-consed graph of what it
// computed. Arguments and results are pytrees; graph inputs are named by their paths
// (`params.layers[0].w`), so printed graphs and generated code read like the model.
// run / evaluate: the reference interpreter on concrete host data, with the same trees.
import type { Graph, Node } from "../ir/node.js";
import type { DType } from "../ir/dtype.js";
import { printGraph, type PrintOptions } from "../ir/print.js";
import { interpret, type InterpretMode } from "../interpret/interpret.js";
import { fmtShape, sameShape } from "../ir/shapes.js";
import { ShapeError, TraceError } from "../errors.js";
import { Tensor } from "../tensor/tensor.js";
import type { Dim } from "../tensor/shape-types.js";
import { TraceContext, withContext } from "./context.js";
import { flatten, leafPaths, unflatten, type TreeDef } from "./pytree.js";
import { HostTensor, TensorSpec, isHost, isSpec, isTensor, type HostInputsOf, type HostOf, type SpecsOf, type TracersOf } from "./values.js";

export interface TraceOptions {
  /** Values of the named dimensions used in the specs (and in reshapes inside `fn`). */
  readonly dims?: Readonly<Record<string, number>>;
  /** Names of the arguments, used in input names (default `arg0`, `arg1`, …). */
  readonly names?: readonly string[];
  /** Record each node's call site (file:line) for printing; errors name it either way. */
  readonly sites?: boolean;
}

export interface ValueInfo {
  /** Pytree path, e.g. `params.layers[0].w`. */
  readonly path: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A traced function: its graph and the pytree structure of its arguments and results. */
export class Traced<A extends readonly unknown[] = readonly unknown[], R = unknown> {
  declare readonly __type: { readonly args: A; readonly result: R };
  constructor(
    readonly graph: Graph,
    /** Structure of the argument list (an array of the arguments' trees). */
    readonly inTree: TreeDef,
    /** Structure of the result. */
    readonly outTree: TreeDef,
    readonly inputs: readonly ValueInfo[],
    readonly outputs: readonly ValueInfo[],
    readonly dims: Readonly<Record<string, number>>,
  ) {}

  /** The graph as text, one line per node. */
  print(opts?: PrintOptions): string {
    return printGraph(this.graph, opts);
  }

  /** Number of nodes in the graph. */
  get nodeCount(): number {
    return this.graph.nodes.length;
  }

  /**
   * The spec tree of the result: trace an initializer once to get the specs of the parameters
   * it makes, without evaluating it (`trace(fn, specs).resultSpecs()`).
   */
  resultSpecs(): SpecsOf<R> {
    return unflatten(this.outTree, this.outputs.map((o) => new TensorSpec([...o.shape], o.dtype)));
  }
}

function bindShape(s: TensorSpec, dims: Readonly<Record<string, number>>, path: string): number[] {
  return s.shape.map((d: Dim) => {
    if (typeof d === "number") return d;
    const v = dims[d];
    if (v === undefined) {
      throw new TraceError(`trace: ${path} has the named dimension "${d}" (spec ${s}); bind it with trace(…, { dims: { ${d}: n } })`);
    }
    return v;
  });
}

/**
 * Traces `fn` on arguments described by `specs` (one spec tree per argument). Named
 * dimensions in the specs are bound by `opts.dims`.
 */
export function trace<const A extends readonly unknown[], R>(
  fn: (...args: TracersOf<A>) => R,
  specs: A,
  opts: TraceOptions = {},
): Traced<A, R> {
  const dims = opts.dims ?? {};
  const ctx = new TraceContext({ dims, sites: opts.sites ?? false, captures: false, what: "trace" });
  const [leaves, inTree] = flatten(specs, isSpec);
  const paths = argPaths(inTree, opts.names);
  const inputs = leaves.map((s, i) => ctx.builder.input(paths[i]!, bindShape(s, dims, paths[i]!), s.dtype));
  const tracers = inputs.map((n) => new Tensor(n, ctx));
  const [outNodes, outTree] = withContext(ctx, () => {
    const result = fn(...(unflatten(inTree, tracers) as TracersOf<A>));
    const [outs, def] = flatten(result, isTensor);
    return [outs.map((t) => ctx.own(t)), def] as const;
  });
  const graph = ctx.builder.build(outNodes, inputs);
  const outPaths = leafPaths(outTree, "out");
  return new Traced<A, R>(
    graph,
    inTree,
    outTree,
    inputs.map((n, i) => info(paths[i]!, n)),
    outNodes.map((n, i) => info(outPaths[i]!, n)),
    dims,
  );
}

const info = (path: string, n: Node): ValueInfo => ({ path, shape: n.shape, dtype: n.dtype });

/** Leaf paths of an argument list, each argument under its name. */
export function argPaths(inTree: TreeDef, names?: readonly string[]): string[] {
  if (inTree.kind !== "array") return leafPaths(inTree, "args");
  return inTree.items.flatMap((d, i) => leafPaths(d, names?.[i] ?? `arg${i}`));
}

export interface RunOptions {
  /** "f64" (exact reference, the default) or "f32" (rounds like the device). */
  readonly mode?: InterpretMode;
}

/** Runs a traced function in the reference interpreter on host data shaped like its specs. */
export function run<A extends readonly unknown[], R>(traced: Traced<A, R>, args: HostArgs<A>, opts: RunOptions = {}): HostOf<R> {
  const [leaves] = flatten(args, isHost);
  if (leaves.length !== traced.inputs.length) {
    throw new TraceError(`run: the traced function takes ${traced.inputs.length} tensors, found ${leaves.length}`);
  }
  leaves.forEach((h, i) => {
    const want = traced.inputs[i]!;
    if (!sameShape(h.shape, want.shape) || h.dtype !== want.dtype) {
      throw new ShapeError(`run: ${want.path} must be ${want.dtype}${fmtShape(want.shape)}, found ${h.dtype}${fmtShape(h.shape)}`, "run");
    }
  });
  const outs = interpret(traced.graph, leaves.map((h) => h.data), { mode: opts.mode ?? "f64" });
  const hosts = outs.map((data, i) => new HostTensor(traced.outputs[i]!.shape, data, traced.outputs[i]!.dtype));
  return unflatten(traced.outTree, hosts);
}

/** The host-data tree `run` takes for a tree of specs. */
export type HostArgs<A> = HostInputsOf<TracersOf<A>>;

/** Traces `fn` on the shapes of `args` (host tensors) and runs it in the interpreter. */
export function evaluate<const A extends readonly unknown[], R>(
  fn: (...args: TracersOf<A>) => R,
  args: A,
  opts: TraceOptions & RunOptions = {},
): HostOf<R> {
  const traced = trace(fn, specsOf(args) as unknown as A, opts);
  return run(traced, args as unknown as HostArgs<A>, opts);
}

/** The spec tree of a tree of host tensors or tensors (their concrete shapes). */
export function specsOf<const T>(tree: T): SpecsOf<T> {
  const [leaves, def] = flatten(tree, (v): v is HostTensor | Tensor => isHost(v) || isTensor(v));
  return unflatten(
    def,
    leaves.map((l) => new TensorSpec([...l.shape], l.dtype)),
  );
}
