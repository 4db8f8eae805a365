// Asking "at which index would this kernel read node R?" by emitting the kernel's expressions
// symbolically (index variables named e0, e1, ...) and recording every request for R. Fusion
// uses it to decide whether a reduction's result (or a matmul's accumulator) can stay in
// registers: only if every consumer in the kernel reads it at the row (or element) the kernel
// is computing. Because the probe runs the same emitter as code generation, the decision and
// the generated code cannot disagree.
import { sameShape, type Node } from "@dorafuse/core";
import { ExprEmitter, Scope } from "../kernels/expr.js";
import type { KernelIO } from "../kernels/io.js";
import { reshapeIndex, sameIndex, symbolicIndex, type Index } from "../wgsl/ix.js";

export interface ProbeStart {
  node: Node;
  idx: Index;
}

/** A KernelIO for symbolic emission: every tensor is bound, loads read a placeholder, stores write nothing. */
export const stubIO = { has: () => true, load: () => "x", store: () => "" } as unknown as KernelIO;

/**
 * The indices at which each of `targets` is read when every start is evaluated at its index,
 * computing through every node that `isLoaded` does not claim. Undefined if the expressions
 * cannot be emitted inline at all (an op that needs a kernel of its own).
 */
export function probeRequests(starts: readonly ProbeStart[], isLoaded: (n: Node) => boolean, targets: ReadonlySet<Node>): Map<Node, Index[]> | undefined {
  const requests = new Map<Node, Index[]>();
  const emitter = new ExprEmitter({
    io: stubIO,
    isLoaded: (n) => !targets.has(n) && (n.op === "input" || isLoaded(n)),
    local: (n, idx) => {
      if (!targets.has(n)) return undefined;
      const list = requests.get(n) ?? [];
      list.push(idx);
      requests.set(n, list);
      return `local${n.id}`;
    },
  });
  const scope = new Scope();
  try {
    for (const s of starts) emitter.value(s.node, s.idx, scope);
  } catch {
    return undefined;
  }
  return requests;
}

/**
 * The inputs of a group that the kernel reads only at the element it is writing, in every
 * place it reads them: an output may then take such an input's memory when the input dies
 * there (each invocation reads its element before writing the same element, and no
 * invocation reads another's). Map kernels: everywhere; matmul and custom kernels: only in
 * the epilogue (never while staging operands); row kernels: at the row element being
 * reduced or written, never from a row-level value.
 */
export function identityInputs(group: { kind: string; outputs: readonly Node[]; inputs: readonly Node[]; anchors: readonly Node[] }): Set<Node> {
  const found = new Set<Node>();
  if (group.outputs.length === 0) return found;
  const loaded = new Set(group.inputs);
  let space: readonly number[];
  const starts: ProbeStart[] = [];
  const elsewhere: ProbeStart[] = [];
  if (group.kind === "map") {
    space = group.outputs[0]!.shape;
    const home = symbolicIndex(space);
    for (const o of group.outputs) starts.push({ node: o, idx: home });
  } else if (group.kind === "matmul" || group.kind === "custom") {
    const anchor = group.anchors[0]!;
    space = anchor.shape;
    const home = symbolicIndex(space);
    for (const o of group.outputs) if (o !== anchor) starts.push({ node: o, idx: reshapeIndex(home, space, o.shape) });
    for (const x of anchor.inputs) elsewhere.push({ node: x, idx: symbolicIndex(x.shape, "s") });
  } else if (group.kind === "reduce") {
    return identityInReduce(group, loaded);
  } else return found;
  const candidates = new Set(group.inputs.filter((x) => sameShape(x.shape, space)));
  if (candidates.size === 0) return found;
  const home = symbolicIndex(space);
  const locals = new Set([...candidates, ...group.anchors]);
  const req = probeRequests(starts, (n) => loaded.has(n), locals);
  const other = probeRequests(elsewhere, (n) => loaded.has(n), locals);
  if (!req || !other) return found;
  for (const x of candidates) {
    if ((req.get(x) ?? []).every((ix) => sameIndex(ix, home)) && !other.has(x)) found.add(x);
  }
  return found;
}

/**
 * Row kernels: an element-shaped input may be overwritten by an element output if everything
 * reads it at the element being processed; a row-shaped input by a row output if everything
 * reads it at its own row and the element pass not at all (lane 0 writes the row value while
 * other lanes may still be in the element pass; the phases end with a barrier).
 */
function identityInReduce(group: { outputs: readonly Node[]; inputs: readonly Node[]; anchors: readonly Node[] }, loaded: ReadonlySet<Node>): Set<Node> {
  const found = new Set<Node>();
  const r = group.anchors[0]!;
  const e = r.inputs[0]!.shape;
  const axes = r.attrs.axes as number[];
  const eIdx = symbolicIndex(e);
  const kIdx = eIdx.filter((_, k) => !axes.includes(k));
  const kShape = e.filter((_, k) => !axes.includes(k));
  const elementOuts = group.outputs.filter((o) => !group.anchors.includes(o) && sameShape(o.shape, e) && axes.length > 0);
  const rowOuts = group.outputs.filter((o) => !group.anchors.includes(o) && !elementOuts.includes(o));
  const locals = new Set([...group.inputs.filter((x) => sameShape(x.shape, e) || sameShape(x.shape, kShape)), ...group.anchors]);
  const isLoaded = (n: Node) => loaded.has(n);
  const phases = probeRequests(group.anchors.map((a) => ({ node: a.inputs[0]!, idx: eIdx })), isLoaded, locals);
  const elements = probeRequests(elementOuts.map((node) => ({ node, idx: eIdx })), isLoaded, locals);
  const rows = probeRequests(rowOuts.map((node) => ({ node, idx: kIdx })), isLoaded, locals);
  if (!phases || !elements || !rows) return found;
  const all = (m: Map<Node, Index[]>, x: Node, ix: Index) => (m.get(x) ?? []).every((i) => sameIndex(i, ix));
  for (const x of group.inputs) {
    if (sameShape(x.shape, e) && all(phases, x, eIdx) && all(elements, x, eIdx) && !rows.has(x)) found.add(x);
    else if (sameShape(x.shape, kShape) && all(phases, x, kIdx) && !elements.has(x) && all(rows, x, kIdx)) found.add(x);
  }
  return found;
}
