// Pytrees: nested plain objects and arrays whose leaves are tensors (parameters, batches,
// optimizer state). `flatten` lists the leaves in a fixed order — arrays by index, objects by
// sorted key, as JAX does, so two trees with the same keys flatten alike whatever order the
// keys were written in — and a TreeDef that `unflatten` uses to rebuild the structure.
// Everything else (numbers, strings, booleans, null, undefined) is static: kept in the
// TreeDef, not a leaf.
import { TraceError } from "../errors.js";

export type TreeDef =
  | { readonly kind: "leaf" }
  | { readonly kind: "static"; readonly value: unknown }
  | { readonly kind: "array"; readonly items: readonly TreeDef[] }
  | { readonly kind: "object"; readonly keys: readonly string[]; readonly items: readonly TreeDef[] };

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Leaves of `tree` (values for which `isLeaf` holds) and its structure. */
export function flatten<L>(tree: unknown, isLeaf: (v: unknown) => v is L): [L[], TreeDef] {
  const leaves: L[] = [];
  const walk = (v: unknown, path: string): TreeDef => {
    if (isLeaf(v)) {
      leaves.push(v);
      return LEAF;
    }
    if (Array.isArray(v)) return { kind: "array", items: v.map((x, i) => walk(x, `${path}[${i}]`)) };
    if (isPlainObject(v)) {
      const keys = Object.keys(v).sort();
      return { kind: "object", keys, items: keys.map((k) => walk(v[k], path ? `${path}.${k}` : k)) };
    }
    if (v === null || v === undefined || typeof v === "number" || typeof v === "string" || typeof v === "boolean") {
      return { kind: "static", value: v };
    }
    throw new TraceError(`pytree: unsupported value at ${path || "the root"}: ${describe(v)} (use plain objects, arrays and tensors)`);
  };
  const def = walk(tree, "");
  return [leaves, def];
}

const LEAF: TreeDef = Object.freeze({ kind: "leaf" });

function describe(v: unknown): string {
  if (typeof v === "object" && v !== null) return `an instance of ${v.constructor?.name ?? "an object with a prototype"}`;
  return typeof v;
}

/** Rebuilds a tree of the structure `def` from `leaves` (in flatten order). */
export function unflatten<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    switch (d.kind) {
      case "leaf":
        if (i >= leaves.length) throw new TraceError(`unflatten: the structure has more leaves than the ${leaves.length} given`);
        return leaves[i++];
      case "static":
        return d.value;
      case "array":
        return d.items.map(build);
      case "object": {
        const o: Record<string, unknown> = {};
        d.keys.forEach((k, j) => (o[k] = build(d.items[j]!)));
        return o;
      }
    }
  };
  const out = build(def);
  if (i !== leaves.length) throw new TraceError(`unflatten: the structure has ${i} leaves, ${leaves.length} were given`);
  return out as T;
}

/** Number of leaves in a TreeDef. */
export function leafCount(def: TreeDef): number {
  switch (def.kind) {
    case "leaf":
      return 1;
    case "static":
      return 0;
    default:
      return def.items.reduce((n, d) => n + leafCount(d), 0);
  }
}

/** The path of every leaf (`params.layers[0].w`), in flatten order, under the root name. */
export function leafPaths(def: TreeDef, root: string): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string): void => {
    if (d.kind === "leaf") out.push(path);
    else if (d.kind === "array") d.items.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (d.kind === "object") d.keys.forEach((k, j) => walk(d.items[j]!, /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`));
  };
  walk(def, root);
  return out;
}

/** Maps a prefix tree of booleans (a mask) onto the leaves of `def`: true where selected. */
export function maskLeaves(def: TreeDef, mask: unknown, where = "mask"): boolean[] {
  const out: boolean[] = [];
  const walk = (d: TreeDef, m: unknown, path: string): void => {
    if (typeof m === "boolean") {
      for (let k = leafCount(d); k > 0; k--) out.push(m);
      return;
    }
    if (d.kind === "array" && Array.isArray(m)) {
      if (m.length !== d.items.length) throw new TraceError(`${where}: ${path} has ${m.length} entries, the tree has ${d.items.length}`);
      d.items.forEach((x, i) => walk(x, m[i], `${path}[${i}]`));
      return;
    }
    if (d.kind === "object" && isPlainObject(m)) {
      const extra = Object.keys(m).filter((k) => !d.keys.includes(k));
      if (extra.length > 0) throw new TraceError(`${where}: ${path} names keys the tree lacks: ${extra.join(", ")}`);
      // A key left out of the mask is frozen: the mask lists what trains.
      d.keys.forEach((k, j) => walk(d.items[j]!, k in m ? m[k] : false, `${path}.${k}`));
      return;
    }
    if (d.kind === "static") return;
    throw new TraceError(`${where}: at ${path} expected true/false or the same structure as the tree, found ${JSON.stringify(m)}`);
  };
  walk(def, mask, "mask");
  return out;
}
