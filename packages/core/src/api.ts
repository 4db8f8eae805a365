// The frontend of @dorafuse/core: what users write models in. Typed tensors and their shape
// rules, tracing, pytrees, autodiff over pytrees, composite ops, random numbers, and the
// `nn` layers. (The engine half — IR, primitives, interpreter, vjpGraph — is engine.ts.)

// tensors and shapes as types
export { Tensor, type Operand, type OperandShape, type SOf, type DOf } from "./tensor/tensor.js";
export type { Dim, Shape as TensorShape, ShapeMismatch, Check, Ok, Broadcast, Broadcast3, BroadcastTo, MatMul, FmtShape } from "./tensor/shape-types.js";
export type { Axes, Reduce, Reshape, Transpose, SwapLast, Concat, Slice, SliceRange, ExpandDims, Squeeze, Gather } from "./tensor/layout-types.js";
export type { Plus, Minus, Times, Product } from "./tensor/arith.js";
export type { FloatDType, IntDType, NumericDType } from "./tensor/dtypes.js";
export { fill, zeros, ones, scalar, iota, arange, where, matmul, concat } from "./tensor/create.js";

// tracing, pytrees, host data
export { trace, run, evaluate, specsOf, Traced, type TraceOptions, type RunOptions, type ValueInfo, type HostArgs } from "./trace/trace.js";
export { spec, hostTensor, TensorSpec, HostTensor, type TracersOf, type HostOf, type SpecsOf, type HostInputsOf } from "./trace/values.js";
export { flatten, unflatten, leafPaths, type TreeDef } from "./trace/pytree.js";
export { isTracing } from "./trace/context.js";
/** Applies any registered primitive (built-in or a library author's) to traced tensors in the innermost trace. */
export { emit as applyPrimitive } from "./tensor/emit.js";
export { callSite } from "./trace/site.js";

// autodiff
export { grad, valueAndGrad, vjp, type GradOptions, type GradsOf, type NullsOf, type Mask, type MaskedGrads, type GradResult } from "./grad/grad.js";
export { stopGradient, customVjp, checkpoint } from "./grad/custom.js";

// composite ops
export { sigmoid, silu, relu, gelu, softmax, logSoftmax, logSumExp } from "./ops/activations.js";
export { layerNorm, rmsNorm } from "./ops/norms.js";
export { crossEntropy, mse, type CrossEntropyOptions } from "./ops/losses.js";
export { attention, multiHeadAttention, splitHeads, mergeHeads, embedding, type AttentionOptions } from "./ops/attention.js";
export { randomKey, keyFromSeed, randomBits, splitKey, foldIn, uniform, normal, bernoulli, dropout, type Key } from "./ops/random.js";

// layers
export * as nn from "./nn/index.js";
