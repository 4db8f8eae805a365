// The graph-level side of `checkpoint` and `customVjp`: making `call` nodes (their VJP is
// part of the vjp transform: autodiff/vjp.ts, callVjp).
import type { GraphBuilder } from "../ir/builder.js";
import type { Graph, Node } from "../ir/node.js";
import { graphRef } from "../ir/graphref.js";

/** A `call` node that recomputes `body` in the backward instead of keeping its intermediates. */
export function checkpointCall(b: GraphBuilder, body: Graph, args: readonly Node[], site?: string): Node {
  return b.emit("call", args, { body: graphRef(body), mode: "checkpoint" }, site);
}

/** A `call` node computing `fwd` whose VJP is `bwd` (inputs: fwd's inputs, then the output cotangent). */
export function customVjpCall(b: GraphBuilder, fwd: Graph, bwd: Graph, args: readonly Node[], site?: string): Node {
  return b.emit("call", args, { body: graphRef(fwd), mode: "customVjp", bwd: graphRef(bwd) }, site);
}
