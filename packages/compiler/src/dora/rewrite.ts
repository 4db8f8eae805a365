// The DoRA rewrites. Two places, one recognizer:
//
//   - before differentiation (core's primal-rewrite hook, run by vjpGraph): every DoRA layer
//     in the function being differentiated becomes a doraLinear node, whose VJP rule emits the
//     fused backward (doraGradRows, doraGradCols) over the packed forward state;
//   - as a compiler pass, after the built-in passes: layers in graphs that were never
//     differentiated are recognized the same way; then each plain output that has a packed
//     twin (the forward state its backward reads) is read from the twin, so the forward runs
//     once; then every layer gets its schedule (schedule.ts), the split one as doraStats plus
//     a doraLinear that reads it.
import { GraphBuilder, type Attrs, type DoraAttrs, type Graph, type Node } from "@dorafuse/core";
import { rebuild, rewrite } from "../passes/rewrite.js";
import { Recognizer, type DoraMatch } from "./recognize.js";
import { chooseSchedule, type DoraSchedule } from "./schedule.js";

export interface DoraConfig {
  /** Recognize DoRA layers and fuse them (default true). Off: the composite runs as written. */
  readonly enabled: boolean;
  /** The forward schedule of layers that do not name one: the cost model's choice, or forced. */
  readonly schedule: "auto" | DoraSchedule;
}

let config: DoraConfig = { enabled: true, schedule: "auto" };

/**
 * Changes how DoRA layers are compiled; returns the previous settings. Graphs traced for a
 * gradient are rewritten while they are traced; graphs compiled through `compile` are cached
 * by their traced form, so call `clearCompileCache()` after changing this for a function
 * already compiled.
 */
export function configureDora(c: Partial<DoraConfig>): DoraConfig {
  const prev = config;
  config = { ...config, ...c };
  return prev;
}

/** Runs `fn` with some settings changed, then restores them. */
export function withDoraConfig<T>(c: Partial<DoraConfig>, fn: () => T): T {
  const prev = configureDora(c);
  try {
    return fn();
  } finally {
    config = prev;
  }
}

/** The doraLinear node for a layer found at `n` (reshaped to n's shape when x has other leading axes). */
function emitMatch(b: GraphBuilder, m: DoraMatch, n: Node): Node {
  const attrs: DoraAttrs & Attrs = { scale: m.scale, eps: m.eps, clamp: m.clamp, rate: m.drop?.rate ?? 0, detach: m.detach, bias: !!m.bias, schedule: config.schedule };
  // a base stored in f16 and cast to f32 where it is used: the layer reads the f16 tensor
  // itself (its kernels convert as they load), so no f32 copy of W is ever made
  const W = m.W.op === "cast" && m.W.inputs[0]!.dtype === "f16" ? m.W.inputs[0]! : m.W;
  const inputs = [m.x, W, m.A, m.B, m.m, ...(m.bias ? [m.bias] : []), ...(m.drop ? [m.drop.key] : [])];
  const y = b.emit("doraLinear", inputs, attrs, n.site);
  return y.shape.join() === n.shape.join() ? y : b.emit("reshape", [y], { shape: [...n.shape] }, n.site);
}

/** Every DoRA layer in `graph` replaced by a doraLinear node (the primal rewrite). */
export function recognizeDora(graph: Graph): Graph {
  if (!config.enabled) return graph;
  const r = new Recognizer();
  let found = false;
  const out = rewrite(graph, (n, b) => {
    const m = r.match(n);
    if (!m) return undefined;
    found = true;
    return emitMatch(b, m, n);
  });
  return found ? out : graph;
}

type Attr = DoraAttrs & { schedule?: string; why?: string };

/** What a doraLinear computes, whatever its mode: the key under which twins are found. */
const valueKey = (n: Node, ids: readonly number[]): string => {
  const a = n.attrs as unknown as Attr;
  return `${ids.join()}|${a.scale}|${a.eps}|${a.clamp}|${a.rate}|${a.bias}`;
};

/** The layer's node in its schedule: one doraLinear, or doraStats and a doraLinear reading it. */
function place(b: GraphBuilder, inputs: readonly Node[], a: Attr, site?: string): Node {
  const [x, W, A] = inputs as [Node, Node, Node];
  const [out, inDim] = W.shape as [number, number];
  const pinned = a.schedule === "single" || a.schedule === "split" ? a.schedule : config.schedule === "auto" ? undefined : config.schedule;
  const shape = { n: x.shape.slice(0, -1).reduce((p, d) => p * d, 1), inDim, out, rank: A.shape[0]!, dropout: a.rate > 0 };
  const choice = chooseSchedule(shape, pinned);
  const attrs = { ...a, schedule: choice.schedule, why: choice.why } as unknown as Attrs;
  if (choice.schedule === "single") return b.emit("doraLinear", inputs, attrs, site);
  const key = a.rate > 0 ? [inputs[a.bias ? 6 : 5]!] : [];
  const stats = b.emit("doraStats", [x, W, A, inputs[3]!, ...key], { scale: a.scale, eps: a.eps, clamp: a.clamp, rate: a.rate, detach: a.detach, bias: false }, site);
  return b.emit("doraLinear", [...inputs, stats], { ...attrs, stats: true }, site);
}

/**
 * Reads plain layer outputs from their packed twins and places every layer in its schedule.
 * Layers already scheduled (a stats input) are left as they are.
 */
export function scheduleDora(graph: Graph): Graph {
  if (!graph.nodes.some((n) => n.op === "doraLinear")) return graph;
  const twins = new Map<string, Node>();
  for (const n of graph.nodes) {
    const a = n.attrs as unknown as Attr;
    if (n.op === "doraLinear" && a.save && !a.stats) twins.set(valueKey(n, n.inputs.map((i) => i.id)), n);
  }
  return rebuild(graph, (n, ins, b) => {
    const a = n.attrs as unknown as Attr;
    if (n.op !== "doraLinear" || a.stats) return b.emit(n.op, ins, n.attrs, n.site);
    const twin = a.save ? undefined : twins.get(valueKey(n, n.inputs.map((i) => i.id)));
    if (!twin) {
      // the plain output does not depend on the detach mode: equal layers share one kernel
      return place(b, ins, a.save ? a : { ...a, detach: true }, n.site);
    }
    const save = place(b, ins, twin.attrs as unknown as Attr, n.site);
    const y = b.emit("slice", [save], { start: [0], end: [n.shape.reduce((p, d) => p * d, 1)] });
    return b.emit("reshape", [y], { shape: [...n.shape] });
  });
}

/** The compiler pass: recognize layers the trace left as composites, then schedule. */
export function doraPass(graph: Graph): Graph {
  if (!config.enabled) return graph;
  return scheduleDora(recognizeDora(graph));
}
