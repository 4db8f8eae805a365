// The user's hands on differentiation: stopGradient (no gradient through), customVjp (a
// hand-written backward) and checkpoint (recompute in the backward instead of keeping
// intermediates). The last two emit `call` nodes whose bodies are nested graphs; the engine
// gives `call` its VJP, the interpreter and compiler inline the bodies.
import { buildGraph } from "../ir/builder.js";
import { checkpointCall, customVjpCall } from "../autodiff/checkpoint.js";
import { TraceError } from "../errors.js";
import { type AnyTensor, emit, fill, fmtT, withUserSite, wrap } from "../tensor/emit.js";
import type { Tensor } from "../tensor/tensor.js";
import { currentContext } from "../trace/context.js";
import { flatten, leafCount, unflatten, type TreeDef } from "../trace/pytree.js";
import { nestedArgs, traceNested } from "../trace/nested.js";
import { argPaths } from "../trace/trace.js";
import { isTensor } from "../trace/values.js";
import type { GradsOf } from "./grad.js";

/** `x` unchanged, but no gradient flows back through it. */
export function stopGradient<T extends Tensor>(x: T): T {
  return emit("stopGradient", [x as unknown as AnyTensor]) as unknown as T;
}

type Cotangents<A extends readonly unknown[]> = { -readonly [K in keyof A]: GradsOf<A[K]> | null };

/**
 * `fwd` with a hand-written backward. `bwd(args, ct, out)` returns one cotangent tree per
 * argument (null for none / zero). `fwd` returns one tensor and must not use tensors of an
 * enclosing trace (pass them as arguments: their gradient has to come from `bwd`).
 */
export function customVjp<A extends readonly unknown[], R extends Tensor>(
  fwd: (...args: A) => R,
  bwd: (args: A, ct: R, out: R) => Cotangents<A>,
): (...args: A) => R {
  return (...args) => {
    const [leaves, def] = flatten(args, isTensor);
    const names = argPaths(def);
    const body = traceNested("customVjp", (...ls) => fwd(...(unflatten(def, ls) as unknown as A)), leaves, names, false);
    if (body.outTree.kind !== "leaf") throw new TraceError("customVjp: the forward function must return one tensor");
    const out = body.graph.outputs[0]!;
    const back = traceNested(
      "customVjp backward",
      (...ls) => {
        const xs = unflatten(def, ls.slice(0, leaves.length)) as unknown as A;
        const ct = ls[leaves.length]! as unknown as R;
        const cts = bwd(xs, ct, fwd(...xs));
        return fillCotangents(def, cts, ls.slice(0, leaves.length));
      },
      [...leaves, out],
      [...names, "ct"],
      false,
    );
    const ctx = currentContext("customVjp");
    try {
      return wrap(customVjpCall(ctx.builder, body.graph, back.graph, nestedArgs(body, leaves)), ctx) as unknown as R;
    } catch (e) {
      throw withUserSite(e);
    }
  };
}

/** The cotangents `bwd` returned as one tensor per argument leaf, zeros where it gave null. */
function fillCotangents(def: TreeDef, cts: unknown, primals: readonly AnyTensor[]): AnyTensor[] {
  if (def.kind !== "array" || !Array.isArray(cts) || cts.length !== def.items.length) {
    const n = def.kind === "array" ? def.items.length : 1;
    throw new TraceError(`customVjp: bwd must return an array with one cotangent tree per argument (${n})`);
  }
  const out: AnyTensor[] = [];
  def.items.forEach((d, i) => {
    const ps = primals.slice(out.length, out.length + leafCount(d));
    const c = cts[i];
    const gs = c === null || c === undefined ? ps.map(() => null) : flatten(c, (v): v is AnyTensor | null => isTensor(v) || v === null)[0];
    if (gs.length !== ps.length) throw new TraceError(`customVjp: cotangent ${i} has ${gs.length} leaves, argument ${i} has ${ps.length} tensors`);
    ps.forEach((p, j) => {
      const g = gs[j];
      if (g && (g.dtype !== p.dtype || g.shape.join() !== p.shape.join())) {
        throw new TraceError(`customVjp: cotangent ${i} (leaf ${j}) is ${fmtT(g)}, its argument is ${fmtT(p)}`);
      }
      out.push(g ?? fill(p.shape, 0, p.dtype));
    });
  });
  return out;
}

/**
 * `fn` whose intermediates are recomputed in the backward pass instead of kept: each output
 * tensor becomes a `call` node with mode "checkpoint".
 */
export function checkpoint<A extends readonly unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    const [leaves, def] = flatten(args, isTensor);
    const body = traceNested("checkpoint", (...ls) => fn(...(unflatten(def, ls) as unknown as A)), leaves, argPaths(def));
    const ctx = currentContext("checkpoint");
    const inputs = nestedArgs(body, leaves);
    const outs = body.graph.outputs.map((o) => {
      try {
        return wrap(checkpointCall(ctx.builder, buildGraph([o], body.graph.inputs), inputs), ctx);
      } catch (e) {
        throw withUserSite(e);
      }
    });
    return unflatten<R>(body.outTree, outs);
  };
}
