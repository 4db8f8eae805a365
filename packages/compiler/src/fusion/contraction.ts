// Contraction groups: a matrix product and everything that can share its K-loop, in one kernel.
//
// The main product C = X·Y ([I, K]·[K, O]) is tiled as usual: each workgroup owns rows
// [row0, row0 + tm) and columns [col0, col0 + tn) of C and steps over K, staging tiles of its
// operands in workgroup memory. Other contractions over the same K join the loop when their
// operands are tiles the loop can stage — rows of C's rows (axis I), of its columns (axis O),
// or a low-rank operand held whole (axis W, at most LOW_RANK rows) — and so do row sums
// Σ_k a·b over such tiles:
//
//   x·Wᵀ (the main product), x·Aᵀ (I × W), W·Aᵀ (O × W), A·Aᵀ (W × W), Σ_k W² (O), Σ_k x² (I)
//
// all read from the same x, W and A tiles. What consumes their results — elementwise ops and
// low-rank contractions (K ≤ LOW_RANK) such as (x·Aᵀ)·Bᵀ or Σ_r (W·Aᵀ)⊙B — is the group's
// epilogue: values over the tile's rows or columns only are computed once per workgroup into
// workgroup memory, values over its elements per element from the accumulators. Which axis
// each value lives on is found by emitting the epilogue symbolically (the same emitter that
// prints the kernel) and reading off where every value is requested.
//
// A value the loop computes is recomputed by every workgroup that needs it (x·Aᵀ once per
// column tile, W·Aᵀ once per row tile, A·Aᵀ everywhere); the group forms when that extra
// work costs less than the main product itself, and says so for `explain`.
import { getPrimitive, type Node } from "@dorafuse/core";
import { loweringOf } from "../lowering.js";
import type { Target } from "../limits.js";
import { ExprEmitter, Scope } from "../kernels/expr.js";
import { candidateTiles, chooseTile, DISPATCH_COST, tileCost, type Tile } from "../kernels/tiles.js";
import { coneCost, SHARED_RECOMPUTE_LIMIT } from "./cost.js";
import { stubIO } from "./probe.js";
import { flatten, ixVar, namesOf, reshapeIndex, type Index, type Ix } from "../wgsl/ix.js";
import { CompileError } from "../errors.js";
import { ref } from "./group.js";
import type { Placement } from "./placement.js";

/** The longest contraction computed inline, as a loop, in a contraction group's epilogue. */
export const LOW_RANK = 64;

/** The most values (per index) an epilogue may compute, and the most nodes a group may hold. */
const EPILOGUE_LIMIT = 4000;
const REGION_LIMIT = 160;

/** Where an axis of a value lives in the workgroup's tile: C's rows, its columns, or whole. */
export type Axis = "I" | "O" | "W";

/** A tile of an operand staged by the K-loop: `rows` of the operand's rows, over one step of k. */
export interface TileSpec {
  key: string;
  /** The operand and how it is read: left [rows, K] at (row, k), right [K, rows] at (k, row). */
  node: Node;
  form: "left" | "right";
  axis: Axis;
  /** Rows of the whole operand (I, O or the low rank). */
  extent: number;
  /** Stored k-major ([tk][rows]) when a product reads it as a right operand. */
  kMajor: boolean;
}

export interface Product {
  node: Node;
  /** The product as the tile sees it: a row sum over a tensor of rank > 2 is a vector over its rows. */
  shape: number[];
  kind: "gemm" | "rowdot";
  axes: Axis[];
  left: TileSpec;
  /** Absent for a row sum over a product another kernel wrote: Σ_k of the left tile alone. */
  right?: TileSpec;
}

export interface ContractionPlan {
  main: Node;
  I: number;
  O: number;
  K: number;
  /** The main product first, then the others the loop accumulates. */
  products: Product[];
  tiles: TileSpec[];
  /** Low-rank contractions computed by loops in the epilogue. */
  inline: Set<Node>;
  /** Values other kernels read that are over C's elements: written from the accumulators. */
  elements: Node[];
  /** Values over the tile's rows, columns or low-rank axes, held in workgroup memory, in order. */
  staged: { node: Node; axes: Axis[]; shape: number[] }[];
  /** The workgroup tile of the main product. */
  tile: { tm: number; tn: number; tk: number; rm: number; rn: number };
  /** Floats of workgroup memory: the loop's tiles, then (reusing them) spilled products and staged values. */
  smem: number;
  /** The cost model's estimate of the kernel (kernels/tiles.ts units). */
  cost: number;
  why: string;
}

const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const isMatrixProduct = (n: Node) => n.op === "matmul" && n.shape.length === 2;

/** The contraction length of a matmul or reduceSum. */
export function contractionLength(n: Node): number {
  if (n.op === "matmul") return n.inputs[0]!.shape.at(-1)!;
  return (n.attrs.axes as number[]).reduce((p, a) => p * n.inputs[0]!.shape[a]!, 1);
}

/** A product the main loop can accumulate: a 2-D matmul over K, or Σ_k a·b over the last axis (of length K). */
function loopProduct(n: Node, K: number): boolean {
  if (isMatrixProduct(n)) return n.inputs[0]!.shape[1] === K;
  return rowSum(n, K) || columnSum(n, K);
}

/** Σ_k a·b over the last axis (of length K). */
function rowSum(n: Node, K: number): boolean {
  const x = n.inputs[0];
  return n.op === "reduceSum" && !!x && x.shape.length >= 2 && (n.attrs.axes as number[]).join() === String(x.shape.length - 1) && x.shape.at(-1) === K && x.op === "mul";
}

/** Σ_k a·b over the first axis of a matrix [K, rows]: its operands are read as right operands are. */
function columnSum(n: Node, K: number): boolean {
  const x = n.inputs[0];
  return n.op === "reduceSum" && !!x && x.shape.length === 2 && (n.attrs.axes as number[]).join() === "0" && x.shape[0] === K && x.op === "mul";
}

/** An index of `n` as an index of its shape in the tile (`view`: the same, or flat). */
export const viewIndex = (n: Node, view: readonly number[], idx: Index): Index => (idx.length === view.length ? idx : [flatten(idx, n.shape)]);

/** Where each axis of `x` (of shape `shape` in the tile) lives, from the indices it is read at; or why it lives nowhere. */
function tileAxes(x: Node, shape: readonly number[], list: readonly Index[], I: number, O: number): Axis[] | string {
  const axes: Axis[] = [];
  for (const ix of list) {
    for (let a = 0; a < ix.length; a++) {
      const c = ix[a]!;
      const names = new Set(namesOf(c));
      const axis: Axis | undefined = c.text === "m" ? "I" : c.text === "n" ? "O" : !names.has("m") && !names.has("n") && shape[a]! <= LOW_RANK ? "W" : undefined;
      if (!axis || (axis === "I" && shape[a] !== I) || (axis === "O" && shape[a] !== O)) return `${ref(x)} is read at [${ix.join(", ")}], which no tile axis covers`;
      if (axes[a] !== undefined && axes[a] !== axis) return `${ref(x)} is read along different tile axes`;
      axes[a] = axis;
    }
  }
  return axes;
}

/** The index of a left operand ([rows, K] as the tile reads it) at (r, k). */
export const leftIndex = (x: Node, r: Ix, k: Ix): Index => (x.shape.length === 2 ? [r, k] : reshapeIndex([r, k], [count(x.shape) / x.shape.at(-1)!, x.shape.at(-1)!], x.shape));

/** A contraction short enough to run as a loop in the epilogue. */
const lowRank = (n: Node, K: number): boolean => (n.op === "matmul" || n.op === "reduceSum") && contractionLength(n) <= LOW_RANK && contractionLength(n) !== K;

/** Of a group's contractions, the one the tiles are built around: the most work, then the first. */
export function mainOf(nodes: Iterable<Node>): Node | undefined {
  let best: Node | undefined;
  for (const n of nodes) {
    if (!isMatrixProduct(n)) continue;
    if (!best || count(n.shape) * contractionLength(n) > count(best.shape) * contractionLength(best)) best = n;
  }
  return best;
}

/** The reason a group is refused when computing some of its products in kernels of their own would be cheaper. */
const APART = "computing its other products apart is cheaper";
const PLAIN = "it is a plain matrix product";

const fmtCost = (x: number) => `${(x / 1e6).toFixed(x < 1e7 ? 2 : 0)}M`;

/** The first non-view node an operand element reads, and where: tiles of equal keys hold equal values. */
function elementKey(node: Node, idx: Index): string {
  let hit = "";
  const emitter = new ExprEmitter({
    io: stubIO,
    isLoaded: () => false,
    local: (n, ix) => {
      if (loweringOf(n.op).view) return undefined;
      hit ||= `${n.id}@${ix.join(",")}`;
      return "v";
    },
  });
  emitter.value(node, idx, new Scope());
  return hit;
}

/**
 * The plan of a contraction group computing `nodes` around `main`, or why there is none.
 * `loaded(n)`: the kernel reads n from memory; `written(n)`: other kernels (or the caller)
 * read n, so the kernel writes it.
 */
export function planContraction(main: Node, nodes: ReadonlySet<Node>, loaded: (n: Node) => boolean, written: (n: Node) => boolean, target: Target, plain = false): ContractionPlan | string {
  const [I, O] = main.shape as [number, number];
  const K = contractionLength(main);
  if (K <= LOW_RANK) return `its contraction (${K}) is short enough to run inline`;
  if (nodes.size > REGION_LIMIT) return `its epilogue would hold ${nodes.size} values, more than one kernel takes (${REGION_LIMIT})`;
  const sides = [...nodes].filter((n) => n !== main && loopProduct(n, K));
  const inline = new Set([...nodes].filter((n) => !loopProduct(n, K) && n !== main && lowRank(n, K)));
  for (const n of nodes) {
    if (n === main || sides.includes(n) || inline.has(n)) continue;
    if (loweringOf(n.op).place !== "inline") return `${ref(n)} (${n.op}) cannot be computed in a contraction kernel`;
  }
  // 1. Emit the written values at the tile's elements, every contraction of the loop held
  //    opaque, and record where each value is read.
  const m = ixVar("m", { bound: I });
  const n = ixVar("n", { bound: O });
  const home = [m, n];
  const requests = new Map<Node, Index[]>();
  const loopNodes = new Set([main, ...sides]);
  // low-rank contractions nest (a loop per level): an epilogue past this many values is too
  // large for one kernel, and emitting it would not end soon
  let budget = EPILOGUE_LIMIT;
  const emitter = new ExprEmitter({
    io: stubIO,
    isLoaded: (x) => x.op === "input" || loaded(x),
    inline: (x) => inline.has(x),
    local: (x, idx) => {
      if (--budget < 0) throw new CompileError(`more than ${EPILOGUE_LIMIT} values`, "fusion/contraction");
      if (!nodes.has(x) || loaded(x)) return undefined;
      const list = requests.get(x) ?? [];
      list.push(idx);
      requests.set(x, list);
      return loopNodes.has(x) ? `p${x.id}` : undefined;
    },
  });
  const scope = new Scope();
  const outputs = [...nodes].filter((x) => written(x) && !loaded(x));
  if (main.dtype !== "f32" || sides.some((x) => x.dtype !== "f32")) return "its products are not f32";
  const elementOuts = outputs.filter((o) => count(o.shape) === I * O && !(sides.includes(o) && o.shape.length === 2 && (o.shape[0] !== I || o.shape[1] !== O)));
  try {
    for (const o of elementOuts) emitter.value(o, reshapeIndex(home, main.shape, o.shape), scope);
  } catch (e) {
    return `its epilogue cannot be emitted: ${(e as Error).message.split("\n")[0]}`;
  }
  // 2. Each value read elsewhere than at the element: its axes' places in the tile.
  const axesOf = new Map<Node, Axis[]>();
  const views = new Map<Node, number[]>();
  const viewShape = (x: Node): number[] => views.get(x) ?? [...x.shape];
  const hasMN = (ix: Index) => {
    const names = new Set(ix.flatMap(namesOf));
    return names.has("m") && names.has("n");
  };
  for (const [x, list] of requests) {
    const atElement = list.map(hasMN);
    if (atElement.every(Boolean)) continue;
    if (atElement.some(Boolean)) return `${ref(x)} is read both per element and per row or column of the tile`;
    // per axis, or (a value whose leading axes regroup the tile's rows) as one flat axis
    let axes = tileAxes(x, x.shape, list, I, O);
    if (typeof axes === "string" && x.shape.length > 1) {
      const flat = tileAxes(x, [count(x.shape)], list.map((ix) => [flatten(ix, x.shape)]), I, O);
      if (typeof flat !== "string") {
        views.set(x, [count(x.shape)]);
        axes = flat;
      }
    }
    if (typeof axes === "string") return axes;
    axesOf.set(x, axes);
  }
  const mainReads = requests.get(main) ?? [];
  if (!mainReads.every((ix) => ix.length === 2 && ix[0]!.text === "m" && ix[1]!.text === "n")) return `its epilogue reads ${ref(main)} away from the element it computes`;
  // 3. The loop's products and the tiles they read.
  const tiles = new Map<string, TileSpec>();
  const keyOf = (node: Node, form: "left" | "right", axis: Axis, extent: number): string => {
    const r = ixVar("r", { bound: extent });
    const k = ixVar("k", { bound: K });
    return `${axis}|${elementKey(node, form === "left" ? leftIndex(node, r, k) : [k, r])}`;
  };
  const tileOf = (node: Node, form: "left" | "right", axis: Axis, extent: number): TileSpec => {
    const key = keyOf(node, form, axis, extent);
    const t = tiles.get(key) ?? { key, node, form, axis, extent, kMajor: false };
    if (form === "right") t.kMajor = true;
    tiles.set(key, t);
    return t;
  };
  const extentOf = (axis: Axis, d: number) => (axis === "I" ? I : axis === "O" ? O : d);
  const products: Product[] = [];
  for (const p of [main, ...sides]) {
    let axes: Axis[] = p === main ? ["I", "O"] : axesOf.get(p) ?? (requests.get(p)?.every(hasMN) ? ["I", "O"] : []);
    const shape = viewShape(p);
    const form = columnSum(p, K) ? "right" : "left";
    if (!requests.has(p) && p !== main && p.op === "reduceSum" && written(p)) {
      // a sibling: a row sum no epilogue value reads, written for other kernels; it joins the
      // loop along the tile axis where one of its operands is a tile the loop stages anyway
      const [a, b] = p.inputs[0]!.inputs as [Node, Node];
      const along = (["I", "O"] as const).find((ax) => shape[0] === (ax === "I" ? I : O) && (loaded(p.inputs[0]!) || [a, b].some((x) => tiles.has(keyOf(x, form, ax, shape[0]!)))));
      if (!along) return `${ref(p)} shares no staged tile with the group`;
      axes = [along];
    }
    if (axes.length !== shape.length) return `${ref(p)} (${p.op}) is not read by the epilogue`;
    if (p.op === "matmul") {
      if (axes[0] === axes[1] && axes[0] !== "W") return `${ref(p)} maps both its axes to one tile axis`;
      if (axes.join() === "O,I") return `${ref(p)} is read transposed`;
      if (p !== main && axes.join() === "I,O" && !(requests.get(p) ?? []).every((ix) => ix[0]!.text === "m" && ix[1]!.text === "n")) return `its epilogue reads ${ref(p)} away from the element`;
      const [P, Q] = p.inputs as [Node, Node];
      products.push({ node: p, shape, kind: "gemm", axes, left: tileOf(P, "left", axes[0]!, extentOf(axes[0]!, p.shape[0]!)), right: tileOf(Q, "right", axes[1]!, extentOf(axes[1]!, p.shape[1]!)) });
    } else {
      // Σ_k a·b from the tiles of a and b; from one tile of a·b when another kernel wrote it
      const x = p.inputs[0]!;
      const [a, b] = (loaded(x) ? [x] : x.inputs) as [Node, Node?];
      const ext = extentOf(axes[0]!, shape[0]!);
      products.push({ node: p, shape, kind: "rowdot", axes, left: tileOf(a, form, axes[0]!, ext), ...(b ? { right: tileOf(b, form, axes[0]!, ext) } : {}) });
    }
  }
  if (products.length === 1 && inline.size === 0 && !plain) return PLAIN;
  // 4. Epilogue values held in workgroup memory: low-rank contractions over rows or columns,
  //    values other kernels read, and costly ones (recomputed per element otherwise).
  const staged: { node: Node; axes: Axis[]; shape: number[] }[] = [];
  for (const x of [...axesOf.keys()].sort((a, b) => a.id - b.id)) {
    if (loopNodes.has(x)) continue;
    if (inline.has(x) || written(x) || coneCost(x, (y) => y !== x && (loopNodes.has(y) || inline.has(y) || loaded(y) || axesOf.has(y))) >= SHARED_RECOMPUTE_LIMIT) staged.push({ node: x, axes: axesOf.get(x)!, shape: viewShape(x) });
  }
  for (const x of inline) {
    if (!axesOf.has(x) && !(requests.get(x) ?? []).every(hasMN)) return `${ref(x)} is not read by the epilogue`;
  }
  // every value other kernels read is one the kernel holds: at the element, spilled or staged
  for (const o of outputs) {
    if (!elementOuts.includes(o) && !loopNodes.has(o) && !staged.some((v) => v.node === o)) return `${ref(o)} is read by other kernels but not by the epilogue`;
  }
  // 5. The tile and the decision, by the matmul cost model (kernels/tiles.ts) extended with
  //    what the group adds: every workgroup recomputes the products that do not span both
  //    tile axes. Fused, the cheapest tile whose loop and epilogue fit workgroup memory; apart,
  //    the main product's own best tile plus each other product once and a dispatch each.
  const limit = Math.floor(target.limits.maxComputeWorkgroupStorageSize / 4);
  const side = (axis: Axis, d: number, tm: number, tn: number) => (axis === "I" ? tm : axis === "O" ? tn : d);
  const sizeOf = (axes: Axis[], shape: readonly number[], tm: number, tn: number) => axes.reduce((s, a, i) => s * side(a, shape[i]!, tm, tn), 1);
  const memory = (c: Tile) => {
    const loop = [...tiles.values()].reduce((s, x) => s + side(x.axis, x.extent, c.tm, c.tn) * c.tk, 0);
    const spilled = products.filter((p) => p.axes.join() !== "I,O").reduce((s, p) => s + sizeOf(p.axes, p.shape, c.tm, c.tn), 0);
    const held = staged.reduce((s, v) => s + sizeOf(v.axes, v.shape, c.tm, c.tn), 0);
    return Math.max(loop, spilled + held);
  };
  const recompute = (c: Tile) => {
    const groups = Math.ceil(I / c.tm) * Math.ceil(O / c.tn);
    return products.slice(1).reduce((s, p) => s + (sizeOf(p.axes, p.shape, c.tm, c.tn) * groups - count(p.shape)) * K, 0);
  };
  const cost = (c: Tile) => tileCost(c, 1, I, O, K, target.parallelism) + recompute(c);
  const fitting = candidateTiles(target.limits).filter((c) => memory(c) <= limit);
  if (fitting.length === 0) return `its tiles and epilogue need more workgroup memory than the adapter's ${limit * 4} bytes`;
  const t = fitting.reduce((a, b) => (cost(b) < cost(a) ? b : a));
  const apart = tileCost(chooseTile(target.limits, 1, I, O, K, target.parallelism), 1, I, O, K, target.parallelism) + products.slice(1).reduce((s, p) => s + count(p.shape) * K + DISPATCH_COST, 0);
  const pct = Math.round((100 * recompute(t)) / (I * O * K));
  const costs = `fused ≈ ${fmtCost(cost(t))}, apart ≈ ${fmtCost(apart)}`;
  if (cost(t) > apart) return `${APART} (${costs}; every workgroup would recompute ${pct}% of the main product's work)`;
  const smem = memory(t);
  const why = `${ref(main)} (matmul [${I}×${K}]·[${K}×${O}]) accumulates ${products.slice(1).map((p) => ref(p.node)).join(", ") || "nothing else"} from the same K-loop${inline.size ? ` and computes ${[...inline].map(ref).join(", ")} in its epilogue` : ""}: ${tiles.size} staged tiles, tile ${t.tm}×${t.tn}×${t.tk}, recomputation ${pct}% of the main product (${costs})`;
  return { main, I, O, K, products, tiles: [...tiles.values()], inline, elements: elementOuts, staged, tile: t, smem, cost: cost(t), why };
}

/** Whether every staged operand is computed from tensors other kernels write (or the inputs), none from the group. */
function stageable(p: Placement, plan: ContractionPlan, nodes: ReadonlySet<Node>): boolean {
  const seen = new Set<Node>();
  const free = (x: Node): boolean => {
    if (nodes.has(x)) return false;
    if (seen.has(x) || x.op === "input" || p.groupOf(x) !== undefined) return true;
    seen.add(x);
    return x.inputs.every(free);
  };
  return plan.tiles.every((t) => free(t.node));
}

/** Tensors the group's kernel would bind: what it reads (for the epilogue and the tiles) and what it writes. */
function bindingsOf(p: Placement, plan: ContractionPlan, nodes: ReadonlySet<Node>, written: (n: Node) => boolean): number {
  const reads = new Set<Node>();
  const seen = new Set<Node>();
  const walk = (x: Node): void => {
    if (seen.has(x)) return;
    seen.add(x);
    if (!nodes.has(x) && (x.op === "input" || p.groupOf(x) !== undefined)) return void reads.add(x);
    x.inputs.forEach(walk);
  };
  for (const x of nodes) if (x.op !== "constant") walk(x);
  plan.tiles.forEach((t) => walk(t.node));
  return reads.size + [...nodes].filter(written).length;
}

/** The tensor a value reads through layout views (transpose, reshape, broadcast, slice). */
function underViews(x: Node): Node {
  let y = x;
  while (loweringOf(y.op).view) y = y.inputs[0]!;
  return y;
}

/** Each placed node whose group holds nothing else: a kernel of its own that may join another. */
function alone(p: Placement, x: Node): number | undefined {
  const g = p.groupOf(x);
  if (g === undefined) return undefined;
  const P = p.proto(g);
  return new Set([...P.anchors, ...P.roots]).size === 1 ? g : undefined;
}

/**
 * The nodes a contraction group around `main` would compute: forward, the elementwise values
 * over its elements that read it; backward, everything those read that the kernel can compute
 * — inline values, low-rank contractions and the products of the same K-loop (whose operands
 * are staged tiles, not part of the epilogue).
 */
function regionOf(p: Placement, main: Node): Set<Node> {
  const K = contractionLength(main);
  const size = count(main.shape);
  const nodes = new Set<Node>([main]);
  const forward = [main];
  while (forward.length) {
    for (const u of p.users(forward.pop()!)) {
      if (nodes.has(u) || count(u.shape) !== size || !(getPrimitive(u.op).kind === "elementwise" || u.op === "reshape")) continue;
      const g = p.groupOf(u);
      if (g !== undefined && (alone(p, u) === undefined || p.proto(g).kind !== "map")) continue;
      nodes.add(u);
      forward.push(u);
    }
  }
  const back = [...nodes];
  while (back.length) {
    const x = back.pop()!;
    if (x === main || loopProduct(x, K)) continue;
    for (const i of x.inputs) {
      if (nodes.has(i) || i.op === "input" || i.op === "constant") continue;
      if (p.groupOf(i) === undefined || (alone(p, i) !== undefined && (loopProduct(i, K) || lowRank(i, K)))) {
        nodes.add(i);
        back.push(i);
      }
    }
  }
  return nodes;
}

/**
 * Forms every contraction group worth forming, largest products first: the kernels of its
 * products, low-rank contractions and epilogue join the main product's, and the values other
 * kernels read become its outputs. Runs before the other fusion rules, on kernels of one node.
 */
export function formContractionGroups(p: Placement, target: Target): void {
  const work = (n: Node) => count(n.shape) * contractionLength(n);
  const mains = p.graph.nodes.filter((n) => isMatrixProduct(n) && contractionLength(n) > LOW_RANK).sort((a, b) => work(b) - work(a) || a.id - b.id);
  for (const main of mains) {
    const own = alone(p, main);
    if (own === undefined || p.proto(own).kind !== "matmul") continue;
    let nodes = regionOf(p, main);
    // what other kernels read is written as the value under its views (a broadcast is read
    // as its source, not written at its full size), except graph outputs, written as they are
    const writtenIn = (xs: Set<Node>) => {
      const escapes = (n: Node): boolean => p.users(n).some((u) => !xs.has(u) || (loweringOf(u.op).view && !p.outputs.has(u) && escapes(u)));
      return (n: Node) => p.outputs.has(n) || (!loweringOf(n.op).view && escapes(n));
    };
    const written = (n: Node) => writtenIn(nodes)(n);
    // read from memory: inputs and what other kernels compute (unplaced values outside the
    // region are the loop's operands, computed while staging)
    const loaded = (xs: Set<Node>) => (n: Node) => !xs.has(n) && (n.op === "input" || p.groupOf(n) !== undefined);
    const planOf = (xs: Set<Node>, plain = false) => planContraction(main, xs, loaded(xs), writtenIn(xs), target, plain);
    let plan = planOf(nodes);
    // a plain product still gathers siblings (below): its own cost is the baseline
    if (plan === PLAIN) plan = planOf(nodes, true);
    // too much recomputation: the cheapest group without one, then two, … up to four of the
    // other products (each left out is computed by a kernel of its own, which the group reads)
    if (typeof plan === "string" && plan.startsWith(APART)) {
      const sides = [...nodes].filter((x) => x !== main && loopProduct(x, contractionLength(main)));
      let level: Node[][] = [[]];
      for (let k = 1; k <= Math.min(4, sides.length) && typeof plan === "string"; k++) {
        level = level.flatMap((out) => sides.filter((x) => !out.includes(x) && (out.length === 0 || x.id > out.at(-1)!.id)).map((x) => [...out, x]));
        let best: { nodes: Set<Node>; plan: ContractionPlan } | undefined;
        for (const out of level) {
          const rest = new Set([...nodes].filter((x) => !out.includes(x)));
          const q = planOf(rest);
          if (typeof q !== "string" && (!best || q.cost < best.plan.cost)) best = { nodes: rest, plan: q };
        }
        if (best) [nodes, plan] = [best.nodes, best.plan];
      }
    }
    if (typeof plan === "string") {
      if (nodes.size > 1) p.block(main, `no contraction group: ${plan}`);
      continue;
    }
    // siblings: row sums over a tile the loop stages, read by other kernels only, join when
    // that is cheaper than a kernel of their own
    const K = contractionLength(main);
    const roots = new Set(main.inputs.map(underViews));
    for (const c of p.graph.nodes) {
      if (nodes.has(c) || !(rowSum(c, K) || columnSum(c, K)) || alone(p, c) === undefined) continue;
      if (!c.inputs[0]!.inputs.some((x) => roots.has(underViews(x)))) continue;
      const more = new Set([...nodes, c]);
      const q = planOf(more);
      if (typeof q !== "string" && q.cost < plan.cost + count(c.shape) * K + DISPATCH_COST && stageable(p, q, more)) [nodes, plan] = [more, q];
    }
    if (plan.products.length === 1 && plan.inline.size === 0) continue;
    if (bindingsOf(p, plan, nodes, written) > target.limits.maxStorageBuffersPerShaderStage) {
      p.block(main, "no contraction group: it would read and write more tensors than the adapter binds in one kernel");
      continue;
    }
    if (!stageable(p, plan, nodes)) {
      p.block(main, "no contraction group: an operand of its loop is computed by the group itself");
      continue;
    }
    const undo = p.save();
    let g = own;
    for (const x of nodes) {
      const other = p.groupOf(x);
      if (other !== undefined && other !== p.groupOf(main)) g = p.merge(g, other, "contraction");
      else if (other === undefined && written(x)) p.addRoot(g, x);
    }
    // a kernel the group reads that itself reads the group (through an operand's producer)
    if (p.reaches(g, g)) {
      undo();
      p.block(main, "no contraction group: it would make kernels depend on each other");
      continue;
    }
    p.proto(g).kind = "contraction";
    p.merges.push(`contraction group: ${plan.why}`);
  }
}
