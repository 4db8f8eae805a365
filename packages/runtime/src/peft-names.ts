// How dorafuse's flat tensor names map to Hugging Face's, in one place, both directions.
//
// dorafuse names a tensor by the dotted path of its layer in the parameter tree and a leaf:
// `blocks.0.attn.q.loraA`. PEFT's `get_peft_model_state_dict` names the same tensor by the
// module path inside `PeftModel` (prefix `base_model.model.`), the LoRA sub-module and its
// parameter, with the adapter name ("default") removed: `base_model.model.blocks.0.attn.q.lora_A.weight`.
// Linear layers' factors are sub-modules (`.weight`); embeddings' are bare parameters; the DoRA
// magnitude is saved as `lora_magnitude_vector` without `.weight` (PEFT strips it to keep the
// format of before its DoraLayer refactor). The module path is the dorafuse layer path as is.

/** The prefix of every key PEFT saves for a LoRA adapter: PeftModel.base_model (LoraModel).model. */
export const PEFT_PREFIX = "base_model.model.";

export type PeftLayerKind = "linear" | "embedding";

/** dorafuse adapter leaves ↔ PEFT key suffixes, per kind of layer. */
export const ADAPTER_NAMES = [
  { leaf: "loraA", linear: "lora_A.weight", embedding: "lora_embedding_A" },
  { leaf: "loraB", linear: "lora_B.weight", embedding: "lora_embedding_B" },
  { leaf: "m", linear: "lora_magnitude_vector", embedding: "lora_magnitude_vector" },
  // The base layer's bias, saved only when LoraConfig.bias is not "none"; PEFT wraps the
  // original layer as `base_layer`, so that is where its bias lives.
  { leaf: "b", linear: "base_layer.bias", embedding: undefined },
] as const;

export type AdapterLeaf = (typeof ADAPTER_NAMES)[number]["leaf"];

/** dorafuse leaves of plain layers ↔ Hugging Face parameter names (merged models). One way only: `weight` has three sources. */
export const BASE_NAMES: Readonly<Record<string, string>> = {
  w: "weight", // linear (out, in)
  b: "bias",
  table: "weight", // embedding (vocab, dim)
  gamma: "weight", // layerNorm / rmsNorm scale
  beta: "bias", // layerNorm shift
};

/** Splits `blocks.0.attn.q.loraA` into its layer path and leaf. */
export function splitName(name: string): { path: string; leaf: string } {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? { path: "", leaf: name } : { path: name.slice(0, dot), leaf: name.slice(dot + 1) };
}

export const isAdapterLeaf = (leaf: string): leaf is AdapterLeaf => ADAPTER_NAMES.some((n) => n.leaf === leaf);

/** The PEFT key of an adapter tensor, or undefined when the leaf has no PEFT name for that kind of layer. */
export function toPeftKey(path: string, leaf: AdapterLeaf, kind: PeftLayerKind): string | undefined {
  const suffix = ADAPTER_NAMES.find((n) => n.leaf === leaf)![kind];
  return suffix === undefined ? undefined : `${PEFT_PREFIX}${path}.${suffix}`;
}

export interface ParsedPeftKey {
  path: string;
  leaf: AdapterLeaf;
  /** Undefined when the suffix is the same for both kinds (the magnitude). */
  kind?: PeftLayerKind;
}

/** The layer path, leaf and kind a PEFT key names, or undefined when it is not one of the table's. */
export function fromPeftKey(key: string): ParsedPeftKey | undefined {
  if (!key.startsWith(PEFT_PREFIX)) return undefined;
  const rest = key.slice(PEFT_PREFIX.length);
  for (const names of ADAPTER_NAMES) {
    const kinds = (["linear", "embedding"] as const).filter((k) => names[k] !== undefined && rest.endsWith(`.${names[k]}`));
    if (kinds.length === 0) continue;
    const path = rest.slice(0, rest.length - names[kinds[0]!]!.length - 1);
    if (path === "") return undefined;
    return { path, leaf: names.leaf, ...(kinds.length === 1 ? { kind: kinds[0]! } : {}) };
  }
  return undefined;
}

/** The Hugging Face name of a plain layer's tensor (`blocks.0.attn.q.w` → `blocks.0.attn.q.weight`), or undefined. */
export function toMergedName(name: string): string | undefined {
  const { path, leaf } = splitName(name);
  if (!Object.hasOwn(BASE_NAMES, leaf)) return undefined;
  return path === "" ? BASE_NAMES[leaf] : `${path}.${BASE_NAMES[leaf]}`;
}
