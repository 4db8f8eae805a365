// @dorafuse/models: Hugging Face model families (Llama and its relatives, GPT-2) as dorafuse
// code, model folders (config.json, safetensors, tokenizer.json) loaded onto the GPU, and
// generation with a KV cache.
export { ModelError } from "./errors.js";
export type { BaseConfig, Family, KvCache, WeightNames, Ids } from "./families/family.js";
export { llama, type LlamaConfig, type LlamaParams, type LlamaLayerParams } from "./families/llama.js";
export { gpt2, type Gpt2Config, type Gpt2Params, type Gpt2BlockParams } from "./families/gpt2.js";
export { ropeTables, inverseFrequencies, applyRope, type RopeScaling } from "./families/rope.js";
export { causalAttention, writeCache } from "./families/attention.js";
export { FAMILIES, familyOf, readModelConfig, loadModel, loadHostModel, type LoadedModel, type LoadOptions } from "./model.js";
export { loadWeights, expectedLeaves, type WeightDType, type WeightsReport, type LoadedTensor } from "./weights.js";
export { loadTokenizer, byteTokenizer, TokenizerError, type Tokenizer } from "./tokenizer.js";
export { attachAdapter, type AttachedAdapter } from "./adapter.js";
export { Generator, mergeOnDevice, type GeneratorOptions, type GenerateOptions, type Generation } from "./generate.js";
export { sampleToken, seededRandom, argmax, type SamplingOptions } from "./sample.js";
export { saveModel, COMPANION_FILES, type SaveOptions, type FileDType } from "./save.js";
export { trainTokenizer, byteCharacters, type TrainTokenizerOptions } from "./train-tokenizer.js";
export { readDocuments, packDocuments, splitTokens, trainingBatch, evaluationBatches, checkWindows, type Windows } from "./data.js";
export { languageModelLoss, lmBatchSpec, uploadTables, stackWindows, type LmBatch } from "./lm.js";
export { finetune, resolveSettings, FINETUNE_FILES, type Scored, type FinetuneOptions, type FinetuneSettings, type FinetuneEvent, type FinetuneResult, type Method, type ScheduleName } from "./finetune.js";
export { Progress, formatDuration, formatRate, formatBarLine, formatPlainLine, type ProgressOptions, type ProgressStats, type ProgressStream } from "./progress.js";
export { mergeAdapter, type MergeResult } from "./merge.js";
