// How each primitive is lowered: one record per built-in primitive, in a table typed over
// core's PrimitiveName, so a primitive added to core without a lowering here is a compile
// error. Fusion reads where an op is computed and what recomputing it costs (fusion/fuse.ts,
// fusion/cost.ts); kernels read its arithmetic for FLOP estimates (kernels/kernel.ts).
// Primitives that library authors register (custom ops) are lowered by their kind.
import { getPrimitive, type PrimitiveKind, type PrimitiveName } from "@dorafuse/core";

/**
 * Where an op is computed:
 * - inline: by the expression emitter, inside whichever kernel reads it (elementwise ops,
 *   index arithmetic, gathers, random bits);
 * - reduce, matmul, scatter, custom: as the anchor of a kernel of that kind;
 * - input: a tensor the plan is given; call: inlined by the passes before fusion.
 */
export type Place = "inline" | "reduce" | "matmul" | "scatter" | "custom" | "input" | "call";

export interface Lowering {
  readonly place: Place;
  /** An index-only view of its input (no arithmetic; materializing looks through it). */
  readonly view: boolean;
  /** What recomputing one element costs, in rough units of one arithmetic op (0: index math only). */
  readonly cost: number;
  /** Arithmetic operations per element computed, for FLOP estimates. */
  readonly flops: number;
}

const rec = (place: Place, cost: number, flops: number, view = false): Lowering => ({ place, view, cost, flops });
const view = rec("inline", 0, 0, true);
/** Index-only sources and reindexing without arithmetic. */
const index = (cost: number) => rec("inline", cost, 0);
/** Elementwise arithmetic; `cost` above 1 for transcendental functions and division. */
const arith = (cost = 1) => rec("inline", cost, 1);
const anchor = (place: Place) => rec(place, 2, 1);

export const LOWERINGS: { readonly [P in PrimitiveName]: Lowering } = {
  input: rec("input", 0, 0),
  constant: index(0),
  iota: index(0),
  neg: arith(),
  exp: arith(4),
  log: arith(4),
  sin: arith(4),
  cos: arith(4),
  tanh: arith(4),
  sqrt: arith(3),
  rsqrt: arith(3),
  abs: arith(),
  sign: arith(),
  recip: arith(3),
  floor: arith(),
  ceil: arith(),
  erf: arith(6),
  add: arith(),
  sub: arith(),
  mul: arith(),
  div: arith(3),
  pow: arith(6),
  max: arith(),
  min: arith(),
  eq: arith(),
  ne: arith(),
  lt: arith(),
  le: arith(),
  gt: arith(),
  ge: arith(),
  and: arith(),
  or: arith(),
  not: arith(),
  cast: arith(),
  where: arith(),
  // the identity in the forward: nothing to compute
  stopGradient: index(0),
  reduceSum: anchor("reduce"),
  reduceMax: anchor("reduce"),
  matmul: anchor("matmul"),
  reshape: view,
  transpose: view,
  broadcast: view,
  slice: view,
  pad: index(1),
  concat: index(1),
  gather: index(2),
  scatterAdd: anchor("scatter"),
  randomBits: rec("inline", 24, 1),
  threefry2x32: rec("inline", 2, 1),
  call: rec("call", 2, 0),
  doraLinear: anchor("custom"),
  doraStats: anchor("custom"),
  doraGradRows: anchor("custom"),
  doraGradCols: anchor("custom"),
};

const BY_KIND: Record<PrimitiveKind, Lowering> = {
  source: index(0),
  elementwise: arith(),
  reduce: anchor("reduce"),
  matmul: anchor("matmul"),
  layout: index(1),
  gather: index(2),
  scatter: anchor("scatter"),
  random: rec("inline", 2, 1),
  call: rec("call", 2, 0),
  custom: anchor("custom"),
};

/** The lowering of `op`: its record, or for a registered (custom) primitive, its kind's. */
export function loweringOf(op: string): Lowering {
  return (LOWERINGS as Record<string, Lowering>)[op] ?? BY_KIND[getPrimitive(op).kind];
}
