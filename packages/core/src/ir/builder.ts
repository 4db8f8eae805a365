// GraphBuilder: the one way nodes are made. `emit` looks up the primitive, runs its shape
// rule (errors carry the op, the shapes and the user's call site) and hash-conses by key, so
// emitting the same (op, inputs, attrs) twice returns the same Node: CSE for free.
import { DTYPES, type DType } from "./dtype.js";
import type { AttrValue, Attrs, Graph, Node } from "./node.js";
import type { Emitter, TypeInfo } from "./primitive.js";
import { getPrimitive } from "./registry.js";
import { DTypeError, ShapeError, TraceError } from "../errors.js";
import { checkShape } from "./shapes.js";

// Ids are global so nodes from different builders (a graph and its gradient) never collide,
// and increase with creation, so sorting by id is a topological order.
let nextId = 1;

/** Canonical text of attributes: sorted keys, -0 kept apart from 0, sub-graphs by fingerprint. */
export function attrsKey(attrs: Attrs): string {
  const keys = Object.keys(attrs).sort();
  return keys.length === 0 ? "" : `{${keys.map((k) => `${k}:${valueKey(attrs[k]!)}`).join(",")}}`;
}

function valueKey(v: AttrValue): string {
  if (v === null) return "null";
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(valueKey).join(",")}]`;
  const o = v as { readonly [k: string]: AttrValue };
  if (o.kind === "graph" && "fingerprint" in o) return `graph:${String(o.fingerprint)}`;
  return attrsKey(o);
}

/** Adds the call site (and the op, when the rule did not name it) to a shape rule's error. */
function withSite(e: unknown, op: string, site: string | undefined): unknown {
  if (site === undefined) return e;
  if (e instanceof ShapeError && !e.site) return new ShapeError(e.message, e.op ?? op, site);
  if (e instanceof DTypeError && !e.site) return new DTypeError(e.message, e.op ?? op, site);
  return e;
}

export class GraphBuilder implements Emitter {
  private readonly table = new Map<string, Node>();

  /** A fresh graph input. Inputs are never merged, even with equal names. */
  input(name: string, shape: readonly number[], dtype: DType, site?: string): Node {
    checkShape("input", shape);
    if (!DTYPES.includes(dtype)) throw new DTypeError(`input "${name}": dtype must be one of ${DTYPES.join(", ")}, found ${String(dtype)}`, "input", site);
    const id = nextId++;
    const attrs: Attrs = { name, shape: [...shape], dtype };
    return this.freeze({ id, op: "input", inputs: [], attrs, shape: [...shape], dtype, key: `input#${id}`, site });
  }

  /**
   * Emits `op` over `inputs`: checks arity and shapes, returns the existing node for an equal key.
   * `attrs` become part of the node: do not mutate them afterwards.
   */
  emit(op: string, inputs: readonly Node[], attrs: Attrs = {}, site?: string): Node {
    if (op === "input") {
      const { name, shape, dtype } = attrs as { name: string; shape: number[]; dtype: DType };
      return this.input(name, shape, dtype, site);
    }
    const prim = getPrimitive(op);
    if (prim.arity !== undefined && inputs.length !== prim.arity) {
      const found = inputs.map((n) => `${n.dtype}[${n.shape.join(",")}]`).join(", ");
      throw withSite(new ShapeError(`${op}: expects ${prim.arity} inputs, found ${inputs.length} (${found})`, op), op, site);
    }
    const key = `${op}(${inputs.map((n) => n.id).join(",")})${attrsKey(attrs)}`;
    const hit = this.table.get(key);
    if (hit) return hit;
    let t: { shape: number[]; dtype: DType };
    try {
      t = prim.infer(inputs as readonly TypeInfo[], attrs);
    } catch (e) {
      throw withSite(e, op, site);
    }
    const node = this.freeze({ id: nextId++, op, inputs: [...inputs], attrs, shape: t.shape, dtype: t.dtype, key, site });
    this.table.set(key, node);
    return node;
  }

  /** The graph of everything `outputs` depend on; see `buildGraph`. */
  build(outputs: readonly Node[], inputs?: readonly Node[]): Graph {
    return buildGraph(outputs, inputs);
  }

  private freeze(n: Node): Node {
    if (n.site === undefined) delete (n as { site?: string }).site;
    Object.freeze(n.inputs);
    return Object.freeze(n);
  }
}

/**
 * The nodes `outputs` depend on, in topological order (dead code is simply not reached).
 * `inputs` fixes the graph's input list and order; it must hold every input node reached,
 * and may hold unused ones (they stay in the graph so callers can still pass them).
 */
export function buildGraph(outputs: readonly Node[], inputs?: readonly Node[]): Graph {
  const seen = new Set<Node>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const i of n.inputs) if (!seen.has(i)) stack.push(i);
  }
  const reached = [...seen].filter((n) => n.op === "input");
  if (inputs) {
    const listed = new Set(inputs);
    const missing = reached.filter((n) => !listed.has(n));
    if (missing.length > 0) {
      const names = missing.map((n) => `"${String(n.attrs.name)}" (%${n.id})`).join(", ");
      throw new TraceError(`build: the outputs depend on inputs that are not listed as graph inputs: ${names}`);
    }
    for (const n of inputs) {
      if (n.op !== "input") throw new TraceError(`build: graph inputs must be input nodes, found ${n.op} (%${n.id})`);
      seen.add(n);
    }
  }
  const nodes = [...seen].sort((a, b) => a.id - b.id);
  return {
    inputs: inputs ? [...inputs] : reached.sort((a, b) => a.id - b.id),
    outputs: [...outputs],
    nodes,
  };
}
