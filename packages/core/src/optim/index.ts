// Optimizers as pure functions over pytrees of tensors, traced into the training step:
// SGD (momentum, Nesterov), Adam, AdamW, clipping by global norm, learning-rate schedules.
export { OptimizerError } from "./errors.js";
export { type Optimizer, type OptState, type CommonOptions, type LeafStep, type Rule, makeOptimizer } from "./optimizer.js";
export { sgd, type SgdOptions } from "./sgd.js";
export { adam, adamw, type AdamOptions, type AdamWOptions } from "./adam.js";
export { clipByGlobalNorm, globalNorm } from "./clip.js";
export {
  constantSchedule,
  cosineDecay,
  learningRate,
  linearSchedule,
  linearWarmup,
  warmupCosineDecay,
  type LearningRate,
  type Schedule,
} from "./schedules.js";
