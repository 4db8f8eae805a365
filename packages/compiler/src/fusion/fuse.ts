// Fusion: cuts a graph into kernel groups (graph → groups).
//
// 1. Every reduction, matmul, scatter and custom op anchors a kernel; graph outputs that no
//    anchor computes get an elementwise ("map") kernel. Everything else is inlined into the
//    kernels that consume it, as producers (prologues).
// 2. A matrix product gathers the other products of its K-loop, the low-rank contractions
//    reading them and its elementwise epilogue into one contraction group (contraction.ts).
// 3. Consumers join anchors: a kernel that reads a reduction's result back over the reduced
//    row (softmax, layerNorm, row norms) joins the reduction's kernel when the row fits; an
//    elementwise kernel over a matmul's output becomes the matmul's epilogue.
// 4. Values needed by several kernels are materialized once when recomputing them costs more
//    than reading them (fusion/cost.ts); so are costly matmul operands (re-read per tile).
// 5. Sibling kernels over the same iteration space that share inputs merge into one kernel
//    with several outputs.
// Every decision leaves a reason, printed by `explain`.
import { sameShape, type Graph, type Node } from "@dorafuse/core";
import { loweringOf } from "../lowering.js";
import { CompileError } from "../errors.js";
import { coneCost, MATMUL_PROLOGUE_LIMIT, SHARED_RECOMPUTE_LIMIT } from "./cost.js";
import { ref, type GroupKind, type KernelGroup, type Schedule } from "./group.js";
import { probeRequests, type ProbeStart } from "./probe.js";
import { reshapeIndex, sameIndex, symbolicIndex } from "../wgsl/ix.js";
import { Placement } from "./placement.js";
import { fusesInto } from "../kernels/custom.js";
import { DEFAULT_TARGET, type Target } from "../limits.js";
import { formContractionGroups } from "./contraction.js";

export interface FuseOptions {
  /** false: one kernel per primitive (the reference schedule fused kernels are tested against). */
  fusion?: boolean;
  /** Longest reduced row a reduction shares a kernel with the values that read its result back. */
  maxFusedRow?: number;
  /** Most outputs a merged sibling kernel may have. */
  maxOutputs?: number;
  /** The adapter (its workgroup memory bounds contraction groups). Default: WebGPU's defaults. */
  target?: Target;
}

const ANCHORS: ReadonlySet<string> = new Set<GroupKind>(["reduce", "matmul", "scatter", "custom"]);

const anchorKind = (n: Node): GroupKind | undefined => {
  const place = loweringOf(n.op).place;
  return ANCHORS.has(place) ? (place as GroupKind) : undefined;
};

export function fuse(graph: Graph, opts: FuseOptions = {}): Schedule {
  for (const n of graph.nodes) {
    if (loweringOf(n.op).place === "call") throw new CompileError(`call node ${ref(n)} reached fusion: run the inlineCalls pass first`, "fusion/fuse");
  }
  const p = new Placement(graph);
  if (opts.fusion === false) {
    for (const n of graph.nodes) {
      if (n.op === "input" || (n.op === "constant" && !p.outputs.has(n))) continue;
      p.newGroup(anchorKind(n) ?? "map", anchorKind(n) ? [n] : [], [n]);
      p.reasons.set(n, "fusion disabled: one kernel per primitive");
    }
    return p.finalize();
  }
  const anchors = graph.nodes.filter((n) => anchorKind(n));
  for (const a of anchors) p.newGroup(anchorKind(a)!, [a], [a]);
  for (const o of graph.outputs) if (o.op !== "input" && p.groupOf(o) === undefined) p.newGroup("map", [], [o]);

  const maxRow = opts.maxFusedRow ?? 4096;
  formContractionGroups(p, opts.target ?? DEFAULT_TARGET);
  materializeMatmulOperands(p, anchors.filter((a) => anchorKind(a) === "matmul"));
  materializeCustomInputs(p, anchors.filter((a) => anchorKind(a) === "custom" && !fusesInto(a.op, "prologue")));
  for (const a of anchors) {
    const k = anchorKind(a);
    if (p.proto(p.groupOf(a)!).kind === "contraction") continue;
    if (k === "reduce") fuseRowConsumers(p, a, maxRow);
    else if (k === "matmul") fuseEpilogue(p, a, "matmul");
    else if (k === "custom" && fusesInto(a.op, "epilogue")) fuseEpilogue(p, a, "custom");
  }
  materializeShared(p);
  mergeSiblings(p, opts.maxOutputs ?? 8);
  return p.finalize();
}

/** Reduction space of a reduce node: the shape it reduces and the axes it removes. */
function spaceOf(r: Node): { e: readonly number[]; axes: number[]; kept: number[] } {
  const e = r.inputs[0]!.shape;
  const axes = r.attrs.axes as number[];
  const kept = e.map((_, k) => k).filter((k) => !axes.includes(k));
  return { e, axes, kept };
}

const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Why the reduction group `g` cannot absorb consumer group `c`; undefined if it can. */
function rowFusionBlocker(p: Placement, g: number, c: number, maxRow: number): string | undefined {
  const P = p.proto(g);
  const Q = p.proto(c);
  const r0 = P.anchors[0]!;
  const { e, axes, kept } = spaceOf(r0);
  const rowLen = axes.reduce((s, k) => s * e[k]!, 1);
  if (rowLen > maxRow) return `its rows hold ${rowLen} elements, more than one fused kernel takes (${maxRow})`;
  const eIdx = symbolicIndex(e);
  const kIdx = kept.map((k) => eIdx[k]!);
  const kShape = kept.map((k) => e[k]!);
  const starts: ProbeStart[] = [];
  const targets = new Set<Node>([...P.anchors, ...Q.anchors]);
  if (Q.kind === "reduce") {
    for (const a of Q.anchors) {
      const s = spaceOf(a);
      if (!sameShape(s.e, e) || s.axes.join() !== axes.join()) return `the consumer reduces a different space (${a.op} over [${s.e}] axes [${s.axes}])`;
    }
  } else if (Q.kind !== "map") return `the consumer is a ${Q.kind} kernel`;
  for (const a of targets) starts.push({ node: a.inputs[0]!, idx: eIdx });
  for (const r of [...P.roots, ...Q.roots]) {
    if (targets.has(r)) continue;
    if (sameShape(r.shape, e)) starts.push({ node: r, idx: eIdx });
    else if (sameShape(r.shape, kShape)) starts.push({ node: r, idx: kIdx });
    else return `the consumer computes ${ref(r)} of shape [${r.shape}], neither the reduced [${e}] nor the row shape [${kShape}]`;
  }
  if (p.wouldCycle(g, c)) return "fusing would make the kernels depend on each other";
  const req = probeRequests(starts, (n) => p.isLoadedIn(n, [g, c]), targets);
  if (!req) return "the consumer needs an op that cannot be inlined";
  for (const [t, list] of req) {
    if (!list.every((ix) => sameIndex(ix, kIdx))) return `the consumer reads ${ref(t)} at another position than the row being reduced (through a transpose, slice or gather)`;
  }
  return undefined;
}

function fuseRowConsumers(p: Placement, r: Node, maxRow: number): void {
  for (const c of p.consumerGroups(r)) {
    const g = p.groupOf(r)!;
    if (c === g) continue;
    const blocker = rowFusionBlocker(p, g, c, maxRow);
    if (blocker) p.block(r, blocker);
    else {
      p.merges.push(`${ref(r)} (${r.op}) shares its kernel with ${p.describeRoots(c)}: they read its result back over the same rows`);
      p.merge(g, c, "reduce");
    }
  }
}

function fuseEpilogue(p: Placement, m: Node, kind: "matmul" | "custom"): void {
  for (const c of p.consumerGroups(m)) {
    const g = p.groupOf(m)!;
    if (c === g) continue;
    const Q = p.proto(c);
    let blocker: string | undefined;
    if (Q.kind !== "map") blocker = `its consumer is a ${Q.kind} kernel`;
    else if (![...Q.roots].every((r) => count(r.shape) === count(m.shape))) blocker = "its consumer writes a result with a different number of elements";
    else if (p.wouldCycle(g, c)) blocker = "fusing would make the kernels depend on each other";
    else {
      const home = symbolicIndex(m.shape);
      const starts = [...Q.roots].map((node) => ({ node, idx: reshapeIndex(home, m.shape, node.shape) }));
      const req = probeRequests(starts, (n) => p.isLoadedIn(n, [g, c]), new Set([m]));
      if (!req) blocker = "its consumer needs an op that cannot be inlined";
      else if (!(req.get(m) ?? []).every((ix) => sameIndex(ix, home))) blocker = "its consumer reads it at other positions than the element it writes";
    }
    if (blocker) p.block(m, blocker);
    else {
      p.merges.push(`${ref(m)} (${m.op}) computes ${p.describeRoots(c)} in its epilogue`);
      p.merge(g, c, kind);
      return;
    }
  }
}

/**
 * A matmul operand whose producers cost more than a few operations per element is written to
 * memory first — the tiles would recompute it once per output tile. The value materialized is
 * the computation under any views (reshape, transpose, …), which stay fused as index math.
 */
function materializeMatmulOperands(p: Placement, matmuls: Node[]): void {
  for (const m of matmuls) {
    for (const operand of m.inputs) {
      let x = operand;
      while (loweringOf(x.op).view && p.groupOf(x) === undefined) x = x.inputs[0]!;
      if (x.op === "input" || x.op === "constant" || p.groupOf(x) !== undefined) continue;
      const cost = coneCost(operand, (n) => p.groupOf(n) !== undefined);
      if (cost > MATMUL_PROLOGUE_LIMIT && p.tryNewGroup("map", [], [x]) !== undefined) {
        p.reasons.set(x, `operand of matmul ${ref(m)}: computing it costs ${cost} per element, and a tiled matmul reads each operand element once per output tile`);
      }
    }
  }
}

function materializeCustomInputs(p: Placement, customs: Node[]): void {
  for (const c of customs) {
    for (const x of c.inputs) {
      if (x.op === "input" || p.groupOf(x) !== undefined) continue;
      p.newGroup("map", [], [x]);
      p.reasons.set(x, `input of custom op ${c.op} ${ref(c)}, whose kernel takes no fused producers`);
    }
  }
}

function materializeShared(p: Placement): void {
  const sites = new Map<Node, Set<number>>();
  const nodes = p.graph.nodes;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.op === "input") continue;
    const own = p.groupOf(n);
    if (own !== undefined) {
      sites.set(n, new Set([own]));
      continue;
    }
    const s = new Set<number>();
    for (const u of p.users(n)) for (const g of sites.get(u) ?? p.sitesOf(u)) s.add(g);
    if (s.size >= 2 && n.op !== "constant") {
      const cost = coneCost(n, (m) => p.groupOf(m) !== undefined);
      const id = cost >= SHARED_RECOMPUTE_LIMIT ? p.tryNewGroup("map", [], [n]) : undefined;
      if (id !== undefined) {
        p.reasons.set(n, `read by ${s.size} kernels; recomputing it would cost ${cost} per element in each, so it is computed once`);
        sites.set(n, new Set([id]));
        continue;
      }
    }
    sites.set(n, s);
  }
}

function mergeSiblings(p: Placement, maxOutputs: number): void {
  const buckets = new Map<string, number[]>();
  for (const id of p.liveGroups()) {
    const P = p.proto(id);
    let key: string | undefined;
    if (P.kind === "map") key = `map:${[...P.roots][0]!.shape.join(",")}`;
    else if (P.kind === "reduce") {
      const s = spaceOf(P.anchors[0]!);
      key = `reduce:${s.e.join(",")}/${s.axes.join(",")}`;
    }
    if (key) buckets.set(key, [...(buckets.get(key) ?? []), id]);
  }
  for (const ids of buckets.values()) {
    const merged: number[] = [];
    for (const id of ids) {
      const cone = p.cone(id);
      const target = merged.find((m) => {
        const Q = p.proto(m);
        if (Q.roots.size + p.proto(id).roots.size > maxOutputs) return false;
        const other = p.cone(m);
        const shares = cone.inputs.some((x) => other.inputs.includes(x)) || cone.nodes.some((x) => other.nodes.includes(x));
        if (!shares) return false;
        if (Q.kind === "reduce") return !p.reaches(id, m) && !p.reaches(m, id);
        return !p.wouldCycle(id, m);
      });
      if (target === undefined) merged.push(id);
      else {
        p.merges.push(`${p.describeRoots(id)} joins the kernel of ${p.describeRoots(target)}: same iteration space, shared inputs`);
        const into = p.merge(target, id, p.proto(target).kind);
        merged[merged.indexOf(target)] = into;
      }
    }
  }
}

export type { KernelGroup };
