// The graph-level side of `checkpoint` and `customVjp`: making `call` nodes, and their VJP.
import type { GraphBuilder } from "../ir/builder.js";
import type { Attrs, Graph, GraphRef, Node } from "../ir/node.js";
import { isFloat } from "../ir/dtype.js";
import { graphRef } from "../ir/graphref.js";
import { inline } from "../ir/inline.js";
import { vjpGraph } from "./vjp.js";

/** A `call` node that recomputes `body` in the backward instead of keeping its intermediates. */
export function checkpointCall(b: GraphBuilder, body: Graph, args: readonly Node[], site?: string): Node {
  return b.emit("call", args, { body: graphRef(body), mode: "checkpoint" }, site);
}

/** A `call` node computing `fwd` whose VJP is `bwd` (inputs: fwd's inputs, then the output cotangent). */
export function customVjpCall(b: GraphBuilder, fwd: Graph, bwd: Graph, args: readonly Node[], site?: string): Node {
  return b.emit("call", args, { body: graphRef(fwd), mode: "customVjp", bwd: graphRef(bwd) }, site);
}

/** One more `remat` level than the node had, so the copy never hash-conses with its source. */
const remat = (n: Node): Attrs => ({ ...n.attrs, remat: ((n.attrs.remat as number | undefined) ?? 0) + 1 });

// vjpGraph of a body is the same for every call of it (a checkpointed layer used N times).
const bodyVjps = new WeakMap<Graph, Graph>();

function bodyVjp(body: Graph): Graph {
  let g = bodyVjps.get(body);
  if (!g) {
    const wrt = body.inputs.flatMap((n, i) => (isFloat(n.dtype) ? [i] : []));
    g = vjpGraph(body, wrt);
    bodyVjps.set(body, g);
  }
  return g;
}

/** VJP rule of `call`: see prims/call.ts. */
export function callVjp(ct: Node, node: Node, b: GraphBuilder): (Node | null)[] {
  const args = node.inputs;
  if (node.attrs.mode === "customVjp") {
    const outs = inline((node.attrs.bwd as GraphRef).graph, b, [...args, ct]);
    return outs.map((o, i) => (isFloat(args[i]!.dtype) ? o : null));
  }
  // checkpoint: forward recomputation and backward of the body, all marked `remat`
  const body = (node.attrs.body as GraphRef).graph;
  const outs = inline(bodyVjp(body), b, [...args, ct], remat);
  const grads = outs.slice(1);
  let k = 0;
  return args.map((a) => (isFloat(a.dtype) ? grads[k++]! : null));
}
