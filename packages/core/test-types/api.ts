// Types of the API around the tensors: specs give typed tracers, evaluate gives typed host
// tensors, grad mirrors the parameter tree, layers carry their dimensions.
import {
  crossEntropy,
  evaluate,
  grad,
  hostTensor,
  layerNorm,
  nn,
  randomKey,
  softmax,
  spec,
  trace,
  valueAndGrad,
  type HostTensor,
  type Tensor,
} from "@dorafuse/core";
import { expectType, type Equal } from "./equal.js";

// ---- trace: specs type the tracers ---------------------------------------------------------
trace(
  (x, w) => {
    expectType<Equal<typeof x, Tensor<["batch", 16], "f32">>>(true);
    expectType<Equal<typeof w, Tensor<[32, 16], "f32">>>(true);
    const y = x.matmul(w.mT());
    // @ts-expect-error [batch, 32] @ [32, 16]: contracting dims 32 vs 16... w is not transposed twice
    y.matmul(w.mT());
    return y.sum();
  },
  [spec(["batch", 16]), spec([32, 16])],
  { dims: { batch: 8 } },
);

trace(
  (p) => {
    expectType<Equal<typeof p.layers, [{ w: Tensor<[4, 4], "f32"> }, { w: Tensor<[4, 4], "f32"> }]>>(true);
    expectType<Equal<typeof p.ids, Tensor<[3], "i32">>>(true);
    return p.layers[0].w.add(p.layers[1].w);
  },
  [{ layers: [{ w: spec([4, 4]) }, { w: spec([4, 4]) }], ids: spec([3], "i32") }],
);

// @ts-expect-error the function takes more arguments than there are specs
trace((x: Tensor<[2], "f32">, y: Tensor<[2], "f32">) => x.add(y), [spec([2])]);

// ---- evaluate: host tensors in, typed host tensors out -------------------------------------
const out = evaluate((a, b) => ({ s: a.add(b), m: a.matmul(b.reshape([3, 1])) }), [hostTensor([1, 3], [1, 2, 3]), hostTensor([3], [4, 5, 6])]);
expectType<Equal<typeof out.s, HostTensor<[1, 3], "f32">>>(true);
expectType<Equal<typeof out.m, HostTensor<[1, 1], "f32">>>(true);

// ---- grad mirrors the differentiated tree ---------------------------------------------------
type Params = { w: Tensor<[4, 3], "f32">; b: Tensor<[4], "f32">; frozen: { emb: Tensor<[10, 3], "f32"> }; ids: Tensor<[2], "i32"> };
declare const params: Params;
declare const xb: Tensor<["batch", 3], "f32">;
const loss = (p: Params, x: Tensor<["batch", 3], "f32">) => x.matmul(p.w.mT()).add(p.b).square().mean();
const g = grad(loss)(params, xb);
expectType<Equal<typeof g, { w: Tensor<[4, 3], "f32">; b: Tensor<[4], "f32">; frozen: { emb: Tensor<[10, 3], "f32"> }; ids: null }>>(true);
const g1 = grad(loss, { argnums: 1 })(params, xb);
expectType<Equal<typeof g1, Tensor<["batch", 3], "f32">>>(true);
const g01 = grad(loss, { argnums: [0, 1] })(params, xb);
expectType<Equal<typeof g01[1], Tensor<["batch", 3], "f32">>>(true);
const gm = grad(loss, { trainable: { w: true, b: true } })(params, xb);
expectType<Equal<typeof gm, { w: Tensor<[4, 3], "f32">; b: Tensor<[4], "f32">; frozen: { emb: null }; ids: null }>>(true);
const [v, gv] = valueAndGrad(loss)(params, xb);
expectType<Equal<typeof v, Tensor<[], "f32">>>(true);
expectType<Equal<typeof gv.w, Tensor<[4, 3], "f32">>>(true);
// @ts-expect-error the gradient function takes the same arguments as the loss
grad(loss)(params);

// ---- composites keep shapes ----------------------------------------------------------------
declare const logits: Tensor<["batch", "seq", 100], "f32">;
declare const labels: Tensor<["batch", "seq"], "i32">;
expectType<Equal<ReturnType<typeof softmax<["batch", "seq", 100], "f32">>, Tensor<["batch", "seq", 100], "f32">>>(true);
const ce = crossEntropy(logits, labels);
expectType<Equal<typeof ce, Tensor<[], "f32">>>(true);
const ceNone = crossEntropy(logits, labels, { reduction: "none" });
expectType<Equal<typeof ceNone, Tensor<["batch", "seq"], "f32">>>(true);
declare const badLabels: Tensor<["batch", 7], "i32">;
// @ts-expect-error labels must have the logits' shape without the class axis
crossEntropy(logits, badLabels);
declare const gamma: Tensor<[100], "f32">;
declare const gamma99: Tensor<[99], "f32">;
const ln = layerNorm(logits, gamma, gamma);
expectType<Equal<typeof ln, Tensor<["batch", "seq", 100], "f32">>>(true);
// @ts-expect-error the scale must match the last axis
layerNorm(logits, gamma99);

// ---- nn layers carry their dimensions -------------------------------------------------------
const lin = evaluate((k) => nn.linear.init(k, { inDim: 16, outDim: 32 }), [randomKey(0)]);
expectType<Equal<typeof lin.w, HostTensor<[32, 16], "f32">>>(true);
declare const lp: nn.LinearParams<16, 32>;
declare const xs: Tensor<["batch", "seq", 16], "f32">;
declare const xs8: Tensor<["batch", "seq", 8], "f32">;
const ly = nn.linear.apply(lp, xs);
expectType<Equal<typeof ly, Tensor<["batch", "seq", 32], "f32">>>(true);
// @ts-expect-error a 16 → 32 layer applied to 8 features
nn.linear.apply(lp, xs8);
declare const lnp: nn.LayerNormParams<16>;
// @ts-expect-error a norm over 16 features applied to 8
nn.layerNorm.apply(lnp, xs8);
declare const bp: nn.BlockParams<16, 64>;
const by = nn.transformerBlock.apply(bp, xs, { heads: 2 });
expectType<Equal<typeof by, Tensor<["batch", "seq", 16], "f32">>>(true);
// @ts-expect-error a block over 16 features applied to 8
nn.transformerBlock.apply(bp, xs8, { heads: 2 });

// ---- more misuse the types catch --------------------------------------------------------------
import { embedding, keyFromSeed, splitKey, uniform } from "@dorafuse/core";
declare const ints2: Tensor<[4, 3], "i32">;
declare const floats: Tensor<["batch", "seq"], "f32">;
declare const table64: Tensor<[100, 64], "f32">;
// @ts-expect-error softmax needs a float tensor
softmax(ints2);
// @ts-expect-error layerNorm needs a float tensor
layerNorm(ints2);
// @ts-expect-error labels must be integers
crossEntropy(logits, floats);
// @ts-expect-error embedding ids must be integers
embedding(table64, floats);
trace(() => {
  const [a, b, c] = splitKey(keyFromSeed(0), 3);
  const u = uniform(a, [2, 3]);
  expectType<Equal<typeof u, Tensor<[2, 3], "f32">>>(true);
  // @ts-expect-error a split into 3 keys has no fourth
  const [, , , d] = splitKey(keyFromSeed(0), 3);
  // @ts-expect-error a key is u32[2], not a float tensor
  uniform(u, [2]);
  return [b, c, d];
}, []);
declare const m6: Tensor<[2, 3], "f32">;
// @ts-expect-error 6 elements cannot be declared as [batch, 3]
m6.reshape(["batch", 3]);
