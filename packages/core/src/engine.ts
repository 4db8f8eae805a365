// The engine half of @dorafuse/core: graph IR, primitive records, reference interpreter,
// counter-based random bits and graph-level autodiff. The typed Tensor API builds on these.
export type { AttrValue, Attrs, Graph, GraphRef, Node } from "./ir/node.js";
export { wrapInt, convertValue, roundF16, roundFor } from "./ir/dtype.js";
export {
  type Shape,
  fmtShape,
  sizeOf,
  sameShape,
  stridesOf,
  checkShape,
  broadcastShapes,
  broadcastsTo,
  resolveReshape,
  normalizeAxes,
  checkPerm,
  inversePerm,
} from "./ir/shapes.js";
export {
  type Primitive,
  type PrimitiveKind,
  type EvalContext,
  type TypeInfo,
  type Emitter,
} from "./ir/primitive.js";
export { registerPrimitive, findPrimitive, getPrimitive, listPrimitives } from "./ir/registry.js";
export { BUILTINS, type PrimitiveName } from "./prims/index.js";
export { GraphBuilder, buildGraph, attrsKey } from "./ir/builder.js";
export { inline, inlineMap } from "./ir/inline.js";
export { printGraph, printNode, fmtAttrs, fmtType, type PrintOptions } from "./ir/print.js";
export { graphRef } from "./ir/graphref.js";
export { full, wgslLiteral, WGSL_SPECIAL_VALUES } from "./prims/source.js";
export { erf } from "./prims/elementwise-unary.js";
export { doraLayout, doraDropMask, type DoraAttrs, type DoraLayout } from "./prims/dora.js";
export type { CallAttrs } from "./prims/call.js";
export { interpret, type InputValue, type InterpretMode, type InterpretOptions } from "./interpret/interpret.js";
export { threefry2x32, randomBitsReference, THREEFRY_WGSL } from "./random/threefry.js";
export { vjpGraph, backprop, callVjp } from "./autodiff/vjp.js";
export { registerPrimalRewrite, unregisterPrimalRewrite, applyPrimalRewrites, type PrimalRewrite } from "./autodiff/rewrites.js";
export { checkpointCall, customVjpCall } from "./autodiff/checkpoint.js";
