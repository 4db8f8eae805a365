// The table of built-in primitives, keyed by name: one line per primitive. Adding a primitive
// touches its family's file and one line here; its name then becomes a PrimitiveName, and
// every table typed over the names (the compiler's lowerings) fails to compile until it
// covers it.
import type { Primitive } from "../ir/primitive.js";
import { constant, input, iota } from "./source.js";
import { abs, ceil, cos, erfPrim, exp, floor, log, neg, recip, rsqrt, sign, sin, sqrt, tanh } from "./elementwise-unary.js";
import { add, div, max, min, mul, pow, sub } from "./elementwise-binary.js";
import { and, eq, ge, gt, le, lt, ne, not, or } from "./compare-logical.js";
import { cast, stopGradient, where } from "./cast-where.js";
import { reduceMax, reduceSum } from "./reduce.js";
import { matmul } from "./matmul.js";
import { broadcast, reshape, transpose } from "./layout.js";
import { concat, pad, slice } from "./slicing.js";
import { gather, scatterAdd } from "./indexing.js";
import { randomBits, threefry } from "./random.js";
import { call } from "./call.js";
import { doraGradCols, doraGradRows, doraLinear, doraStats } from "./dora.js";

export const BUILTINS = {
  input,
  constant,
  iota,
  neg,
  exp,
  log,
  sin,
  cos,
  tanh,
  sqrt,
  rsqrt,
  abs,
  sign,
  recip,
  floor,
  ceil,
  erf: erfPrim,
  add,
  sub,
  mul,
  div,
  pow,
  max,
  min,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  and,
  or,
  not,
  cast,
  where,
  stopGradient,
  reduceSum,
  reduceMax,
  matmul,
  reshape,
  transpose,
  broadcast,
  slice,
  pad,
  concat,
  gather,
  scatterAdd,
  randomBits,
  threefry2x32: threefry,
  call,
  doraLinear,
  doraStats,
  doraGradRows,
  doraGradCols,
} as const satisfies Record<string, Primitive<any>>;

/** The name of a built-in primitive. */
export type PrimitiveName = keyof typeof BUILTINS;
