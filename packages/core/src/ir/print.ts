// The readable text form of a graph, one line per node, like a jaxpr:
//   graph(%0:f32[4,3] "x", %1:f32[3,2] "w")
//     %2:f32[4,2] = matmul %0 %1
//     %3:f32[4] = reduceSum[axes=[1]] %2
//     return %3
// Tests, docs and error messages use it. Nodes are numbered locally (in topological order)
// so the text does not depend on what else the process built.
import type { AttrValue, Attrs, Graph, GraphRef, Node } from "./node.js";

export interface PrintOptions {
  /** Use the nodes' global ids instead of local numbers. */
  readonly globalIds?: boolean;
  /** Append each node's call site as a `# file:line` comment. */
  readonly sites?: boolean;
}

const isGraphRef = (v: AttrValue): v is GraphRef =>
  typeof v === "object" && v !== null && !Array.isArray(v) && (v as { kind?: unknown }).kind === "graph" && "graph" in v;

export function fmtAttrValue(v: AttrValue): string {
  if (v === null) return "null";
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(fmtAttrValue).join(",")}]`;
  if (isGraphRef(v)) return `<graph ${v.fingerprint}>`;
  const o = v as { readonly [k: string]: AttrValue };
  return `{${Object.keys(o).map((k) => `${k}=${fmtAttrValue(o[k]!)}`).join(", ")}}`;
}

/** `[axes=[1], keep=true]`, or "" for no attributes. */
export function fmtAttrs(attrs: Attrs): string {
  const keys = Object.keys(attrs);
  return keys.length === 0 ? "" : `[${keys.map((k) => `${k}=${fmtAttrValue(attrs[k]!)}`).join(", ")}]`;
}

/** `f32[4,3]` */
export const fmtType = (n: { shape: readonly number[]; dtype: string }): string => `${n.dtype}[${n.shape.join(",")}]`;

export function printGraph(graph: Graph, opts: PrintOptions = {}, indent = ""): string {
  const names = new Map<Node, string>();
  const name = (n: Node): string => {
    let s = names.get(n);
    if (s === undefined) {
      s = `%${opts.globalIds ? n.id : names.size}`;
      names.set(n, s);
    }
    return s;
  };
  const head = graph.inputs.map((n) => `${name(n)}:${fmtType(n)} ${JSON.stringify(String(n.attrs.name))}`);
  const lines = [`${indent}graph(${head.join(", ")})`];
  const inputs = new Set(graph.inputs);
  for (const n of graph.nodes) {
    if (inputs.has(n)) continue;
    lines.push(...printNodeLines(n, name, opts, indent + "  "));
  }
  lines.push(`${indent}  return ${graph.outputs.map(name).join(", ")}`);
  return lines.join("\n");
}

/** One node as `%id:f32[4] = op[attrs] %a %b`, with global ids; used in error messages. */
export function printNode(n: Node): string {
  return printNodeLines(n, (m) => `%${m.id}`, { globalIds: true }, "").join("\n");
}

function printNodeLines(n: Node, name: (m: Node) => string, opts: PrintOptions, indent: string): string[] {
  const lhs = `${name(n)}:${fmtType(n)}`;
  let rhs: string;
  const subs: string[] = [];
  if (n.op === "input") rhs = `input ${JSON.stringify(String(n.attrs.name))}`;
  else {
    rhs = n.op + fmtAttrs(n.attrs);
    if (n.inputs.length > 0) rhs += " " + n.inputs.map(name).join(" ");
    for (const [k, v] of Object.entries(n.attrs)) {
      if (isGraphRef(v)) subs.push(`${indent}    ${k} =`, printGraph(v.graph, opts, indent + "    "));
    }
  }
  const site = opts.sites && n.site ? `  # ${n.site}` : "";
  return [`${indent}${lhs} = ${rhs}${site}`, ...subs];
}
