// The state the fusion pass works on: which group computes each placed node (anchors and
// materialized roots), groups merged with union-find, and the queries fusion decisions need —
// which groups a node is inlined into, each group's cone of nodes, and whether merging two
// groups would make the kernel order cyclic.
import type { Graph, Node } from "@dorafuse/core";
import { CompileError } from "../errors.js";
import { ref, type GroupKind, type KernelGroup, type Schedule } from "./group.js";

export interface Proto {
  id: number;
  kind: GroupKind;
  anchors: Node[];
  roots: Set<Node>;
}

export class Placement {
  readonly reasons = new Map<Node, string>();
  /** Anchors whose consumers could not join their kernel, and why (one reason per consumer tried). */
  readonly blockers = new Map<Node, string[]>();

  block(anchor: Node, reason: string): void {
    const list = this.blockers.get(anchor) ?? [];
    if (!list.includes(reason)) list.push(reason);
    this.blockers.set(anchor, list);
  }
  readonly merges: string[] = [];
  readonly outputs: ReadonlySet<Node>;
  private protos = new Map<number, Proto>();
  private parent = new Map<number, number>();
  private placed = new Map<Node, number>();
  private readonly userMap = new Map<Node, Node[]>();
  private siteCache = new Map<Node, Set<number>>();
  private edgeCache: Map<number, Set<number>> | undefined;
  private nextId = 0;

  constructor(readonly graph: Graph) {
    for (const n of graph.nodes) for (const i of new Set(n.inputs)) this.userMap.set(i, [...(this.userMap.get(i) ?? []), n]);
    this.outputs = new Set(graph.outputs);
  }

  users(n: Node): readonly Node[] {
    return this.userMap.get(n) ?? [];
  }

  private find(id: number): number {
    let r = id;
    while (this.parent.get(r) !== r) r = this.parent.get(r)!;
    this.parent.set(id, r);
    return r;
  }

  groupOf(n: Node): number | undefined {
    const g = this.placed.get(n);
    return g === undefined ? undefined : this.find(g);
  }

  proto(id: number): Proto {
    return this.protos.get(this.find(id))!;
  }

  newGroup(kind: GroupKind, anchors: Node[], roots: Node[]): number {
    const id = this.nextId++;
    this.parent.set(id, id);
    this.protos.set(id, { id, kind, anchors: [...anchors], roots: new Set(roots) });
    for (const n of [...anchors, ...roots]) this.placed.set(n, id);
    this.invalidate();
    return id;
  }

  /**
   * A new group, unless it would close a cycle in the kernel order (a value materialized by
   * its own kernel group would be read by a group it depends on); then nothing changes and
   * the node stays inlined (recomputed) where it is used.
   */
  tryNewGroup(kind: GroupKind, anchors: Node[], roots: Node[]): number | undefined {
    const id = this.newGroup(kind, anchors, roots);
    if (!this.reaches(id, id)) return id;
    this.protos.delete(id);
    this.parent.delete(id);
    for (const n of [...anchors, ...roots]) this.placed.delete(n);
    this.invalidate();
    return undefined;
  }

  /** A restore point: calling the returned function puts the groups back as they are now. */
  save(): () => void {
    const protos = new Map([...this.protos].map(([k, v]) => [k, { ...v, anchors: [...v.anchors], roots: new Set(v.roots) }]));
    const [parent, placed, merges] = [new Map(this.parent), new Map(this.placed), this.merges.length];
    return () => {
      [this.protos, this.parent, this.placed] = [protos, parent, placed];
      this.merges.length = merges;
      this.invalidate();
    };
  }

  /** Places `n` in group `id` as one of its roots: computed there and written for other kernels. */
  addRoot(id: number, n: Node): void {
    const g = this.find(id);
    this.protos.get(g)!.roots.add(n);
    this.placed.set(n, g);
    this.invalidate();
  }

  /** Merges group `b` into `a`; the merged group has `kind`. Returns its id. */
  merge(a: number, b: number, kind: GroupKind): number {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return ra;
    const A = this.protos.get(ra)!;
    const B = this.protos.get(rb)!;
    this.parent.set(rb, ra);
    this.protos.delete(rb);
    A.kind = kind;
    A.anchors = [...A.anchors, ...B.anchors].sort((x, y) => x.id - y.id);
    for (const r of B.roots) A.roots.add(r);
    this.invalidate();
    return ra;
  }

  private invalidate(): void {
    this.siteCache.clear();
    this.edgeCache = undefined;
  }

  liveGroups(): number[] {
    return [...this.protos.keys()].sort((x, y) => x - y);
  }

  /** The groups that compute `n`: its own if placed, else every group one of its users is computed in. */
  sitesOf(n: Node): Set<number> {
    const own = this.groupOf(n);
    if (own !== undefined) return new Set([own]);
    const hit = this.siteCache.get(n);
    if (hit) return hit;
    const s = new Set<number>();
    for (const u of this.users(n)) for (const g of this.sitesOf(u)) s.add(g);
    this.siteCache.set(n, s);
    return s;
  }

  /** Groups other than `n`'s own that compute one of `n`'s users, in creation order. */
  consumerGroups(n: Node): number[] {
    const own = this.groupOf(n);
    const s = new Set<number>();
    for (const u of this.users(n)) for (const g of this.sitesOf(u)) if (g !== own) s.add(g);
    return [...s].sort((x, y) => x - y);
  }

  /** Whether a kernel made of `groups` reads `n` from memory (it is placed in some other group). */
  isLoadedIn(n: Node, groups: readonly number[]): boolean {
    const g = this.groupOf(n);
    if (g === undefined) return false;
    return !groups.map((x) => this.find(x)).includes(g);
  }

  /** The nodes group `id` computes and the materialized tensors it reads. */
  cone(id: number): { nodes: Node[]; inputs: Node[] } {
    const g = this.find(id);
    const P = this.protos.get(g)!;
    const nodes = new Set<Node>();
    const inputs = new Set<Node>();
    const visit = (n: Node): void => {
      if (nodes.has(n) || inputs.has(n)) return;
      const owner = this.groupOf(n);
      if (n.op === "input" || (owner !== undefined && owner !== g)) {
        inputs.add(n);
        return;
      }
      nodes.add(n);
      for (const i of n.inputs) visit(i);
    };
    for (const n of [...P.anchors, ...P.roots]) visit(n);
    const byId = (x: Node, y: Node) => x.id - y.id;
    return { nodes: [...nodes].sort(byId), inputs: [...inputs].sort(byId) };
  }

  /** Group dependency edges: producer group → the groups that read what it computes. */
  private edges(): Map<number, Set<number>> {
    if (this.edgeCache) return this.edgeCache;
    const out = new Map<number, Set<number>>();
    for (const [n] of this.placed) {
      const g = this.groupOf(n)!;
      for (const u of this.users(n)) {
        for (const s of this.sitesOf(u)) {
          if (s === g) continue;
          if (!out.has(g)) out.set(g, new Set());
          out.get(g)!.add(s);
        }
      }
    }
    this.edgeCache = out;
    return out;
  }

  /** Is there a path from group `a` to group `b` (of length ≥ 1, or ≥ 2 with `indirect`)? */
  reaches(a: number, b: number, indirect = false): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    const e = this.edges();
    const stack = [...(e.get(ra) ?? [])].filter((x) => !indirect || x !== rb);
    const seen = new Set<number>();
    while (stack.length) {
      const x = stack.pop()!;
      if (x === rb) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      stack.push(...(e.get(x) ?? []));
    }
    return false;
  }

  /** Merging `a` and `b` is cyclic when a third group lies on a path between them. */
  wouldCycle(a: number, b: number): boolean {
    return this.reaches(a, b, true) || this.reaches(b, a, true);
  }

  describeRoots(id: number): string {
    return [...this.proto(id).roots].map(ref).join(", ");
  }

  private materialized(n: Node): boolean {
    if (this.outputs.has(n)) return true;
    const g = this.groupOf(n);
    return this.users(n).some((u) => [...this.sitesOf(u)].some((s) => s !== g));
  }

  /** The schedule: groups with their outputs, nodes and inputs, in a valid execution order. */
  finalize(): Schedule {
    const reasons = new Map<Node, string>();
    const groups = new Map<number, { kind: GroupKind; anchors: Node[]; outputs: Node[] }>();
    for (const id of this.liveGroups()) {
      const P = this.protos.get(id)!;
      const outputs = [...new Set([...P.anchors, ...P.roots])].filter((n) => this.materialized(n)).sort((x, y) => x.id - y.id);
      if (outputs.length === 0) continue;
      groups.set(id, { kind: P.kind, anchors: P.anchors, outputs });
      for (const n of outputs) reasons.set(n, this.reasonFor(n, P));
    }
    const edges = this.edges();
    const indegree = new Map<number, number>([...groups.keys()].map((g) => [g, 0]));
    for (const [g, to] of edges) if (groups.has(g)) for (const t of to) if (groups.has(t)) indegree.set(t, indegree.get(t)! + 1);
    const firstOut = (g: number) => groups.get(g)!.outputs[0]!.id;
    const ready = [...groups.keys()].filter((g) => indegree.get(g) === 0);
    const order: number[] = [];
    while (ready.length) {
      ready.sort((x, y) => firstOut(x) - firstOut(y));
      const g = ready.shift()!;
      order.push(g);
      for (const t of edges.get(g) ?? []) {
        if (!groups.has(t)) continue;
        indegree.set(t, indegree.get(t)! - 1);
        if (indegree.get(t) === 0) ready.push(t);
      }
    }
    if (order.length !== groups.size) {
      const stuck = [...groups.keys()].filter((g) => !order.includes(g));
      const text = stuck.map((g) => `group ${g} (${this.protos.get(g)!.kind}: ${this.describeRoots(g)}) → ${[...(edges.get(g) ?? [])].filter((t) => stuck.includes(t)).join(", ")}`);
      throw new CompileError(`fusion produced kernels that depend on each other in a cycle:\n  ${text.join("\n  ")}\n${this.merges.join("\n")}`, "fusion/placement");
    }
    const out: KernelGroup[] = order.map((g, i) => {
      const G = groups.get(g)!;
      const cone = this.cone(g);
      return { id: i, kind: G.kind, outputs: G.outputs, anchors: G.anchors, nodes: cone.nodes, inputs: cone.inputs };
    });
    return { graph: this.graph, groups: out, reasons, merges: this.merges };
  }

  private reasonFor(n: Node, P: Proto): string {
    if (this.outputs.has(n)) return "graph output";
    const set = this.reasons.get(n);
    if (set) return set;
    const blockers = this.blockers.get(n);
    if (P.anchors.includes(n)) {
      const what = n.op === "matmul" ? "matmul result" : `${n.op} result`;
      return blockers ? `${what} read by other kernels, which could not join this one: ${blockers.join("; ")}` : `${what} read by another kernel`;
    }
    return "read by another kernel";
  }
}
