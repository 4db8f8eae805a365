// Pytree helpers for model tests: SGD over parameter trees (traced), and comparing trees of
// host tensors leaf by leaf against a float64 reference.
import { flatten, HostTensor, Tensor, unflatten } from "@dorafuse/core";
import { relErr } from "../../../core/test/support/numeric.js";

const isTracer = (v: unknown): v is Tensor => v instanceof Tensor;
const isHost = (v: unknown): v is HostTensor => v instanceof HostTensor;

/** p − lr·g for every leaf of the parameter tree (inside a trace). */
export function sgd<T>(params: T, grads: unknown, lr: number): T {
  const [ps, def] = flatten(params, isTracer);
  const [gs] = flatten(grads, isTracer);
  return unflatten(def, ps.map((p, i) => (p as Tensor<number[], "f32">).sub((gs[i] as Tensor<number[], "f32">).mul(lr))));
}

/**
 * Throws unless every leaf of `got` is within `tol` of the same leaf of `want`, relative to the
 * leaf's norm — or, for a leaf whose reference is a thousand times smaller than the tree's
 * norm (a gradient that is zero in exact arithmetic, like a key bias under softmax), relative
 * to a thousandth of the tree's norm, since float32 rounding of the rest leaves noise there.
 */
export function expectTreeClose(got: unknown, want: unknown, tol: number, what: string): void {
  const [g, gd] = flatten(got, isHost);
  const [w] = flatten(want, isHost);
  if (g.length !== w.length) throw new Error(`${what}: ${g.length} tensors, expected ${w.length}`);
  const paths = leafNames(gd);
  const norm = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));
  const floor = 1e-3 * Math.sqrt(w.reduce((s, x) => s + norm(x.data) ** 2, 0));
  g.forEach((x, i) => {
    const ref = w[i]!.data;
    const scale = norm(ref);
    const e = scale >= floor ? relErr(x.data, ref) : norm(Array.from(x.data, (v, k) => v - ref[k]!)) / floor;
    if (!(e <= tol)) throw new Error(`${what}: ${paths[i] ?? `leaf ${i}`} differs by ${e.toExponential(3)} (tolerance ${tol})`);
  });
}

function leafNames(def: ReturnType<typeof flatten>[1], path = ""): string[] {
  if (def.kind === "leaf") return [path || "value"];
  if (def.kind === "array") return def.items.flatMap((d, i) => leafNames(d, `${path}[${i}]`));
  if (def.kind === "object") return def.items.flatMap((d, i) => leafNames(d, path ? `${path}.${def.keys[i]}` : def.keys[i]!));
  return [];
}
