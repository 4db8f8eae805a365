// call {body, mode, bwd?}: a sub-graph applied to the node's inputs, with one output. The
// interpreter and the compiler inline the body; the mode only changes the VJP:
//   "checkpoint": the backward recomputes the body (re-emitted with a `remat` attr),
//   "customVjp":  the backward inlines `bwd` (inputs: primal inputs, then the output
//                 cotangent; outputs: one cotangent per primal input).
// Its VJP is part of the vjp transform (autodiff/vjp.ts: callVjp), which it needs whole.
import type { Primitive, TypeInfo } from "../ir/primitive.js";
import type { Graph, GraphRef } from "../ir/node.js";
import { ShapeError, TraceError } from "../errors.js";
import { fmtShape, sameShape } from "../ir/shapes.js";

export type CallAttrs = { body: GraphRef; mode: "checkpoint" | "customVjp"; bwd?: GraphRef };

const fmt = (t: TypeInfo): string => `${t.dtype}${fmtShape(t.shape)}`;

function checkArgs(what: string, g: Graph, args: readonly TypeInfo[]): void {
  if (g.inputs.length !== args.length || g.inputs.some((p, i) => !sameShape(p.shape, args[i]!.shape) || p.dtype !== args[i]!.dtype)) {
    throw new ShapeError(
      `call: ${what} takes (${g.inputs.map(fmt).join(", ")}), found (${args.map(fmt).join(", ")})`,
      "call",
    );
  }
}

export const call: Primitive<CallAttrs> = {
  name: "call",
  kind: "call",
  infer: (xs, a) => {
    const body = a.body?.graph;
    if (!body) throw new TraceError("call: attrs.body must be a GraphRef (use graphRef(graph))");
    if (a.mode !== "checkpoint" && a.mode !== "customVjp") throw new TraceError(`call: mode must be "checkpoint" or "customVjp", found ${String(a.mode)}`);
    checkArgs("the body", body, xs);
    if (body.outputs.length !== 1) throw new TraceError(`call: the body must have one output, found ${body.outputs.length}`);
    const out = body.outputs[0]!;
    if (a.mode === "customVjp") {
      const bwd = a.bwd?.graph;
      if (!bwd) throw new TraceError("call: mode customVjp needs attrs.bwd, a GraphRef");
      checkArgs("bwd (primal inputs, then the output cotangent)", bwd, [...xs, out]);
      if (bwd.outputs.length !== xs.length || bwd.outputs.some((o, i) => !sameShape(o.shape, xs[i]!.shape) || o.dtype !== xs[i]!.dtype)) {
        throw new ShapeError(
          `call: bwd must return one cotangent per input (${xs.map(fmt).join(", ")}), found (${bwd.outputs.map(fmt).join(", ")})`,
          "call",
        );
      }
    }
    return { shape: [...out.shape], dtype: out.dtype };
  },
  evaluate: (xs, node, ctx) => ctx.evaluateGraph((node.attrs.body as GraphRef).graph, xs)[0]!,
};
