// Adapters: LoRA and DoRA on linear layers and embeddings (PEFT's conventions), and helpers to
// put them on chosen layers of a parameter tree.
export { AdapterError, DORA_NORM_EPS, adapterScale, type AdapterOptions, type ApplyOptions } from "./config.js";
export { loraLinear, mergeLora, type LoraParams, type AdapterLinearConfig } from "./lora.js";
export { doraLinear, mergeDora, factoredNormSquared, type DoraParams } from "./dora.js";
export { loraEmbedding, doraEmbedding, type LoraEmbeddingParams, type DoraEmbeddingParams } from "./embedding.js";
export {
  adapt,
  adapterMask,
  adapterKind,
  applyEmbedding,
  applyLinear,
  findTargets,
  layerKind,
  mergeAdapters,
  type AdaptConfig,
  type Adapted,
  type Targets,
} from "./tree.js";
