// Shapes as types: every `@ts-expect-error` line below must be a tsc error (a line that stops
// being one fails the build with TS2578), every other line must type-check, and the
// `Equal` checks pin the computed result shapes exactly.
import { concat, matmul, where, type Tensor } from "@dorafuse/core";
import { expectType, type Equal } from "./equal.js";

declare const x: Tensor<["batch", 16], "f32">;
declare const w: Tensor<[32, 16], "f32">;
declare const w15: Tensor<[32, 15], "f32">;
declare const bias: Tensor<[32], "f32">;
declare const b4: Tensor<[4], "f32">;
declare const m23: Tensor<[2, 3], "f32">;
declare const m34: Tensor<[3, 4], "f32">;
declare const m43: Tensor<[4, 3], "f32">;
declare const batched: Tensor<[5, 2, 3], "f32">;
declare const b6: Tensor<[6, 3, 4], "f32">;
declare const seq: Tensor<["batch", "seq", 64], "f32">;
declare const other: Tensor<["other", 16], "f32">;
declare const ints: Tensor<[4, 3], "i32">;
declare const ids: Tensor<["batch", "seq"], "i32">;
declare const wide: Tensor<number[], "f32">;
declare const partial: Tensor<[number, 16], "f32">;
declare const mask: Tensor<["batch", 1], "bool">;

// ---- matmul ----------------------------------------------------------------------------
expectType<Equal<typeof x extends Tensor<infer S, "f32"> ? S : never, ["batch", 16]>>(true);
const y = x.matmul(w.mT());
expectType<Equal<typeof y, Tensor<["batch", 32], "f32">>>(true);
expectType<Equal<typeof batched extends Tensor<infer S> ? S : 0, [5, 2, 3]>>(true);
const bm = batched.matmul(m34);
expectType<Equal<typeof bm, Tensor<[5, 2, 4], "f32">>>(true);
const bb = matmul(m23, b6);
expectType<Equal<typeof bb, Tensor<[6, 2, 4], "f32">>>(true);
expectType<Equal<typeof partial extends Tensor<infer S> ? S : 0, [number, 16]>>(true);
const pm = partial.matmul(w.mT());
expectType<Equal<typeof pm, Tensor<[number, 32], "f32">>>(true);
// @ts-expect-error contracting dimensions differ (16 vs 15)
x.matmul(w15.mT());
// @ts-expect-error contracting dimensions differ: w is [32, 16], not transposed
x.matmul(w);
// @ts-expect-error 3 vs 4
m23.matmul(m43);
// @ts-expect-error batch dimensions 5 and 6 do not broadcast
batched.matmul(b6);
// @ts-expect-error rank 1 operand
m23.matmul(b4);
// @ts-expect-error free function too
matmul(m34, m23);
// @ts-expect-error dtypes differ
m23.matmul(ints);

// ---- broadcasting ----------------------------------------------------------------------
const yb = y.add(bias);
expectType<Equal<typeof yb, Tensor<["batch", 32], "f32">>>(true);
const ys = y.mul(2).sub(1).div(y);
expectType<Equal<typeof ys, Tensor<["batch", 32], "f32">>>(true);
const outer = bias.expandDims(1).mul(b4);
expectType<Equal<typeof outer, Tensor<[32, 4], "f32">>>(true);
const withMask = x.mul(mask.cast("f32"));
expectType<Equal<typeof withMask, Tensor<["batch", 16], "f32">>>(true);
const cmp = y.gt(bias);
expectType<Equal<typeof cmp, Tensor<["batch", 32], "bool">>>(true);
const unknownDims = partial.add(x);
expectType<Equal<typeof unknownDims, Tensor<["batch", 16], "f32">>>(true);
const wideSum = wide.add(x);
expectType<Equal<typeof wideSum, Tensor<(number | "batch")[], "f32">>>(true);
const wideWide = wide.mul(wide).sum(0).reshape([2, -1]);
expectType<Equal<typeof wideWide, Tensor<[2, number], "f32">>>(true);
// @ts-expect-error 32 vs 4
y.add(b4);
// @ts-expect-error [2, 3] with [3, 4]
m23.add(m34);
// @ts-expect-error named dims differ: "batch" vs "other"
x.add(other);
// @ts-expect-error a named dim never equals a literal other than 1
x.add(w);
// @ts-expect-error comparisons broadcast too
y.lt(b4);
// @ts-expect-error dtypes differ
ints.add(m23);
// @ts-expect-error where: cond [batch, 1] with [2, 3]
where(mask, m23, 0);
const wsel = where(mask, x, 0);
expectType<Equal<typeof wsel, Tensor<["batch", 16], "f32">>>(true);

// ---- dtypes ----------------------------------------------------------------------------
// @ts-expect-error exp needs a float dtype
ints.exp();
// @ts-expect-error mean needs a float dtype
ints.mean();
// @ts-expect-error logical not needs bool
x.not();
const negated = mask.not();
expectType<Equal<typeof negated, Tensor<["batch", 1], "bool">>>(true);
const asInt = x.cast("i32");
expectType<Equal<typeof asInt, Tensor<["batch", 16], "i32">>>(true);

// ---- reductions ------------------------------------------------------------------------
const s0 = seq.sum();
expectType<Equal<typeof s0, Tensor<[], "f32">>>(true);
const s1 = seq.sum(-1);
expectType<Equal<typeof s1, Tensor<["batch", "seq"], "f32">>>(true);
const s2 = seq.mean(1, true);
expectType<Equal<typeof s2, Tensor<["batch", 1, 64], "f32">>>(true);
const s3 = seq.max([0, 2]);
expectType<Equal<typeof s3, Tensor<["seq"], "f32">>>(true);
const am = seq.argmax(-1);
expectType<Equal<typeof am, Tensor<["batch", "seq"], "i32">>>(true);
const sk = m23.sum(undefined, true);
expectType<Equal<typeof sk, Tensor<[1, 1], "f32">>>(true);
// @ts-expect-error axis 3 is out of range for a rank-3 tensor
seq.sum(3);
// @ts-expect-error axis -4 is out of range
seq.mean(-4);
// @ts-expect-error one bad axis in a list
seq.max([0, 5]);
// @ts-expect-error argmax axis out of range
m23.argmax(2);

// ---- reshape ---------------------------------------------------------------------------
const r1 = m23.reshape([3, 2]);
expectType<Equal<typeof r1, Tensor<[3, 2], "f32">>>(true);
const r2 = seq.reshape(["batch", "seq", 8, 8]);
expectType<Equal<typeof r2, Tensor<["batch", "seq", 8, 8], "f32">>>(true);
const r3 = seq.reshape(["batch", -1]);
expectType<Equal<typeof r3, Tensor<["batch", number], "f32">>>(true);
declare const big: Tensor<[8, 128, 256], "f32">;
const r4 = big.reshape([1024, 256]);
expectType<Equal<typeof r4, Tensor<[1024, 256], "f32">>>(true);
// @ts-expect-error 6 elements into 8
m23.reshape([4, 2]);
// @ts-expect-error 262144 elements into 262143
big.reshape([1024, 255]);
// @ts-expect-error named dimension lost
seq.reshape(["batch", 64, 64]);
// @ts-expect-error named dimension renamed
seq.reshape(["tokens", 64]);

// ---- transpose / permute ---------------------------------------------------------------
const t1 = seq.transpose([0, 2, 1]);
expectType<Equal<typeof t1, Tensor<["batch", 64, "seq"], "f32">>>(true);
const t2 = m23.transpose();
expectType<Equal<typeof t2, Tensor<[3, 2], "f32">>>(true);
const t3 = seq.transpose([-1, 0, 1]);
expectType<Equal<typeof t3, Tensor<[64, "batch", "seq"], "f32">>>(true);
const mt = batched.mT();
expectType<Equal<typeof mt, Tensor<[5, 3, 2], "f32">>>(true);
// @ts-expect-error not a permutation (repeated axis)
seq.transpose([0, 0, 1]);
// @ts-expect-error wrong number of axes
seq.transpose([1, 0]);
// @ts-expect-error axis out of range
seq.transpose([0, 1, 3]);
// @ts-expect-error mT of a vector
b4.mT();

// ---- concat ----------------------------------------------------------------------------
const c1 = concat([m23, m23], 0);
expectType<Equal<typeof c1, Tensor<[4, 3], "f32">>>(true);
const c2 = concat([m23, m23.reshape([2, 3]), m23], -1);
expectType<Equal<typeof c2, Tensor<[2, 9], "f32">>>(true);
const c3 = concat([x, x], 1);
expectType<Equal<typeof c3, Tensor<["batch", 32], "f32">>>(true);
// @ts-expect-error shapes differ off the axis
concat([m23, m34], 0);
// @ts-expect-error ranks differ
concat([m23, b4], 0);
// @ts-expect-error axis out of range
concat([m23, m23], 2);

// ---- slice -----------------------------------------------------------------------------
const sl1 = w.slice([[0, 8]]);
expectType<Equal<typeof sl1, Tensor<[8, 16], "f32">>>(true);
const sl2 = w.slice([null, [4]]);
expectType<Equal<typeof sl2, Tensor<[32, 12], "f32">>>(true);
const sl3 = w.slice([[-4, -1]]);
expectType<Equal<typeof sl3, Tensor<[3, 16], "f32">>>(true);
const sl4 = seq.slice([null, [0, 8]]);
expectType<Equal<typeof sl4, Tensor<["batch", 8, 64], "f32">>>(true);
// @ts-expect-error end beyond the dimension
w.slice([[0, 40]]);
// @ts-expect-error end before start
w.slice([[8, 4]]);
// @ts-expect-error more ranges than axes
bias.slice([null, [0, 1]]);

// ---- expandDims / squeeze / broadcastTo / gather ----------------------------------------
const e1 = m23.expandDims(0);
expectType<Equal<typeof e1, Tensor<[1, 2, 3], "f32">>>(true);
const e2 = m23.expandDims(-1);
expectType<Equal<typeof e2, Tensor<[2, 3, 1], "f32">>>(true);
const q1 = e1.squeeze(0);
expectType<Equal<typeof q1, Tensor<[2, 3], "f32">>>(true);
// @ts-expect-error axis 3 is out of range for expanding a rank-2 tensor
m23.expandDims(4);
// @ts-expect-error squeezing an axis of size 2
m23.squeeze(0);
// @ts-expect-error squeezing a named axis
x.squeeze(0);
const bt = bias.broadcastTo([7, 32]);
expectType<Equal<typeof bt, Tensor<[7, 32], "f32">>>(true);
// @ts-expect-error 32 does not broadcast to 31
bias.broadcastTo([7, 31]);
declare const table: Tensor<[1000, 64], "f32">;
const emb = table.gather(ids);
expectType<Equal<typeof emb, Tensor<["batch", "seq", 64], "f32">>>(true);
const cols = m23.gather(ints, 1);
expectType<Equal<typeof cols, Tensor<[2, 4, 3], "f32">>>(true);
// @ts-expect-error gather axis out of range
table.gather(ids, 2);
// @ts-expect-error indices must be integers
table.gather(x);

// ---- assignability ---------------------------------------------------------------------
const anyT: Tensor = x;
const anyF: Tensor<import("@dorafuse/core").TensorShape, "f32"> = x;
// @ts-expect-error a [2, 3] is not a [3, 2]
const wrongShape: Tensor<[3, 2], "f32"> = m23;
// @ts-expect-error dtypes are part of the type
const wrongDType: Tensor<[2, 3], "i32"> = m23;
void [anyT, anyF, wrongShape, wrongDType];
