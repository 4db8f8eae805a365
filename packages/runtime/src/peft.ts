// Hugging Face PEFT interchange: a LoRA or DoRA adapter as `PeftModel.save_pretrained` writes
// it (a folder of `adapter_model.safetensors` and `adapter_config.json`), both ways, and a
// merged model as plain safetensors with Hugging Face parameter names. Names go through the
// table in peft-names.ts; the config through peft-config.ts. Export and import run the same
// checks (one validator), so whatever dorafuse writes it can read back, and files that PEFT
// could not load are refused with every problem named by file and key.

import { readFile, stat, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError } from "./errors.js";
import { formatConfig, isTargeted, layerScaling, normalizeConfig, type PeftLoraConfig } from "./peft-config.js";
import { fromPeftKey, isAdapterLeaf, splitName, toMergedName, toPeftKey, type AdapterLeaf, type PeftLayerKind } from "./peft-names.js";
import { readSafetensors, writeFileAtomically, writeSafetensors, type HostTensor, type SafetensorsDType, type TensorsIn } from "./safetensors.js";

export const PEFT_WEIGHTS_FILE = "adapter_model.safetensors";
export const PEFT_CONFIG_FILE = "adapter_config.json";

export interface PeftExport {
  /** dorafuse names: `<layer>.loraA` (r, in), `<layer>.loraB` (out, r), `<layer>.m` (out,) for DoRA, `<layer>.b` when `config.bias` is not "none". */
  tensors: TensorsIn;
  /** LoraConfig fields; `lora_alpha` is required, `r` defaults to the first layer's rank, `use_dora` to whether magnitudes are given, `target_modules` to the layers' last names. */
  config: Partial<PeftLoraConfig> & { lora_alpha: number };
  /** Layer paths that are embeddings (PEFT names their factors lora_embedding_A / lora_embedding_B). */
  embeddings?: readonly string[];
}

/** One adapted layer as PEFT configures it. */
export interface PeftLayer {
  path: string;
  kind: PeftLayerKind;
  rank: number;
  alpha: number;
  /** alpha / rank, or alpha / √rank with use_rslora. */
  scale: number;
  dora: boolean;
}

export interface PeftAdapter {
  config: PeftLoraConfig;
  /** dorafuse names (`<layer>.loraA`, `.loraB`, `.m`, `.b`), exactly the file's bytes. */
  tensors: Record<string, HostTensor>;
  layers: PeftLayer[];
  /** The safetensors `__metadata__` (PEFT writes { format: "pt" }). */
  metadata: Record<string, string>;
}

interface Entry {
  /** How problems name this tensor: the PEFT key on import, the dorafuse name on export. */
  label: string;
  path: string;
  leaf: AdapterLeaf;
  kind?: PeftLayerKind;
  tensor: HostTensor;
}

const FLOAT_DTYPES: readonly SafetensorsDType[] = ["F32", "F16", "BF16", "F64"];
const shapeText = (t: HostTensor) => `${t.dtype}[${t.shape.join(",")}]`;

/**
 * Checks adapter tensors against a config the way PEFT's loader would use them: A and B in
 * pairs, of one kind per layer, 2-D, of the layer's rank; a magnitude (out,) exactly when
 * use_dora; a bias (out,) only when bias is not "none"; floating dtypes; every layer targeted.
 * Returns the layers, or throws one error listing every problem.
 */
function validate(entries: readonly Entry[], config: PeftLoraConfig, unknown: readonly string[], source: string, label: (path: string, leaf: AdapterLeaf, kind: PeftLayerKind) => string): PeftLayer[] {
  const problems: string[] = [...unknown];
  const byLayer = new Map<string, Map<AdapterLeaf, Entry>>();
  for (const e of entries) {
    const layer = byLayer.get(e.path) ?? new Map<AdapterLeaf, Entry>();
    byLayer.set(e.path, layer);
    layer.set(e.leaf, e);
    if (!FLOAT_DTYPES.includes(e.tensor.dtype)) problems.push(`"${e.label}": expected a floating dtype (${FLOAT_DTYPES.join(", ")}), found ${e.tensor.dtype}`);
  }
  const layers: PeftLayer[] = [];
  for (const [path, leaves] of [...byLayer].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const kinds = new Set([...leaves.values()].flatMap((e) => (e.kind ? [e.kind] : [])));
    if (kinds.size > 1) {
      problems.push(`layer "${path}": mixes linear (lora_A/lora_B) and embedding (lora_embedding_A/B) names: ${[...leaves.values()].map((e) => `"${e.label}"`).join(", ")}`);
      continue;
    }
    const kind: PeftLayerKind = kinds.has("embedding") ? "embedding" : "linear";
    const { rank, alpha, scale } = layerScaling(config, path, source);
    const [a, b, m, bias] = (["loraA", "loraB", "m", "b"] as const).map((leaf) => leaves.get(leaf));
    for (const [have, missing] of [[a, "loraB"], [b, "loraA"]] as const) {
      if (have && !leaves.has(missing)) problems.push(`"${label(path, missing, kind)}": missing; "${have.label}" has no partner`);
    }
    if (!a && !b) problems.push(`layer "${path}": ${[...leaves.values()].map((e) => `"${e.label}"`).join(", ")} without its lora_A / lora_B pair`);
    const pattern = config.rank_pattern && Object.keys(config.rank_pattern).length ? " (r or rank_pattern)" : " (r)";
    if (a && (a.tensor.shape.length !== 2 || a.tensor.shape[0] !== rank)) problems.push(`"${a.label}": expected [${rank}, in] for rank ${rank}${pattern}, found ${shapeText(a.tensor)}`);
    if (b && (b.tensor.shape.length !== 2 || b.tensor.shape[1] !== rank)) problems.push(`"${b.label}": expected [out, ${rank}] for rank ${rank}${pattern}, found ${shapeText(b.tensor)}`);
    const out = b?.tensor.shape.length === 2 ? b.tensor.shape[0] : undefined;
    if (config.use_dora && !m && (a || b)) problems.push(`"${label(path, "m", kind)}": missing; use_dora is true, so every layer needs its magnitude vector`);
    if (m && !config.use_dora) problems.push(`"${m.label}": a DoRA magnitude vector, but use_dora is false`);
    if (m && config.use_dora && out !== undefined && (m.tensor.shape.length !== 1 || m.tensor.shape[0] !== out)) {
      problems.push(`"${m.label}": expected [${out}] (one magnitude per output row of lora_B), found ${shapeText(m.tensor)}`);
    }
    if (bias && config.bias === "none") problems.push(`"${bias.label}": a bias, but bias is "none"`);
    if (bias && kind === "embedding") problems.push(`"${bias.label}": an embedding has no bias`);
    if (bias && config.bias !== "none" && out !== undefined && (bias.tensor.shape.length !== 1 || bias.tensor.shape[0] !== out)) problems.push(`"${bias.label}": expected [${out}], found ${shapeText(bias.tensor)}`);
    if (!isTargeted(config, path, source)) problems.push(`layer "${path}": not matched by target_modules ${JSON.stringify(config.target_modules)}, so PEFT would not load it`);
    if (a && b) layers.push({ path, kind, rank, alpha, scale, dora: config.use_dora });
  }
  if (entries.length === 0 && unknown.length === 0) problems.push("no adapter tensors");
  if (problems.length > 0) throw new CheckpointError(`${source}: not a valid PEFT LoRA adapter (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`);
  return layers;
}

const entriesOf = (tensors: TensorsIn): [string, HostTensor][] => (tensors instanceof Map ? [...tensors] : Object.entries(tensors));

/**
 * Writes `<dir>/adapter_model.safetensors` (PEFT's key names, metadata { format: "pt" }) and
 * `<dir>/adapter_config.json`, each atomically, after checking everything. Returns the config
 * written and the PEFT key of each tensor.
 */
export async function exportPeftAdapter(dir: string, spec: PeftExport): Promise<{ config: PeftLoraConfig; keys: Record<string, string> }> {
  const source = `exporting a PEFT adapter to ${dir}`;
  const given = entriesOf(spec.tensors);
  const embeddings = new Set(spec.embeddings ?? []);
  const unknown: string[] = [];
  const entries: Entry[] = [];
  for (const [name, tensor] of given) {
    const { path, leaf } = splitName(name);
    if (path === "" || !isAdapterLeaf(leaf)) unknown.push(`"${name}": not an adapter tensor (expected <layer>.loraA, .loraB, .m or .b)`);
    else entries.push({ label: name, path, leaf, kind: embeddings.has(path) ? "embedding" : "linear", tensor });
  }
  for (const path of embeddings) if (!entries.some((e) => e.path === path)) unknown.push(`embeddings lists "${path}", which has no adapter tensors`);
  const firstA = [...entries].sort((x, y) => (x.path < y.path ? -1 : 1)).find((e) => e.leaf === "loraA");
  const layerNames = [...new Set(entries.map((e) => splitName(e.path).leaf))].sort();
  const config = normalizeConfig(
    {
      r: firstA?.tensor.shape[0] ?? 1,
      use_dora: entries.some((e) => e.leaf === "m"),
      target_modules: layerNames,
      // a field given as undefined means "the default", not a value to check
      ...Object.fromEntries(Object.entries(spec.config).filter(([, v]) => v !== undefined)),
    },
    `${source}: the config`,
  );
  validate(entries, config, unknown, source, (path, leaf) => `${path}.${leaf}`);
  const keys: Record<string, string> = {};
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const key = toPeftKey(e.path, e.leaf, e.kind!)!;
    keys[e.label] = key;
    tensors.set(key, e.tensor);
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, PEFT_WEIGHTS_FILE), tensors, { format: "pt" });
  await writeFileAtomically(join(dir, PEFT_CONFIG_FILE), [Buffer.from(formatConfig(config), "utf8")]);
  return { config, keys };
}

async function readConfig(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new CheckpointError(`${path}: cannot read the adapter config: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${path}: not valid JSON: ${(error as Error).message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Reads a PEFT LoRA / DoRA adapter folder into dorafuse names, after checking it completely. */
export async function importPeftAdapter(dir: string): Promise<PeftAdapter> {
  const configPath = join(dir, PEFT_CONFIG_FILE);
  const weightsPath = join(dir, PEFT_WEIGHTS_FILE);
  const config = normalizeConfig(await readConfig(configPath), configPath);
  if (!(await exists(weightsPath)) && (await exists(join(dir, "adapter_model.bin")))) {
    throw new CheckpointError(`${weightsPath}: missing; the folder has adapter_model.bin, a PyTorch pickle dorafuse does not read (save with safe_serialization=True)`);
  }
  const file = await readSafetensors(weightsPath);
  const unknown: string[] = [];
  const entries: Entry[] = [];
  for (const [key, tensor] of file.tensors) {
    const parsed = fromPeftKey(key);
    if (parsed) entries.push({ label: key, ...parsed, tensor });
    else unknown.push(`"${key}": not a key of a PEFT LoRA adapter (expected base_model.model.<module>.lora_A.weight, .lora_B.weight, .lora_embedding_A, .lora_embedding_B, .lora_magnitude_vector or .base_layer.bias)`);
  }
  const layers = validate(entries, config, unknown, `${weightsPath} (with ${configPath})`, (path, leaf, kind) => toPeftKey(path, leaf, kind) ?? `${path}.${leaf}`);
  const tensors: Record<string, HostTensor> = {};
  for (const e of entries) tensors[`${e.path}.${e.leaf}`] = e.tensor;
  return { config, tensors, layers, metadata: file.metadata };
}

export interface MergedModelOptions {
  /** Prepended to every name (a Hugging Face model's own prefix, e.g. "transformer."). */
  prefix?: string;
  /** Default { format: "pt" }, which transformers requires of safetensors weights. */
  metadata?: Record<string, string>;
}

/**
 * Writes a merged model (adapters already folded into `w`) as safetensors with Hugging Face
 * names: `.w`/`.table`/`.gamma` → `.weight`, `.b`/`.beta` → `.bias`. Adapter tensors, unknown
 * leaves and two names landing on one are errors, all listed. Returns dorafuse name → file name.
 */
export async function exportMergedModel(path: string, tensors: TensorsIn, options: MergedModelOptions = {}): Promise<Record<string, string>> {
  const problems: string[] = [];
  const names: Record<string, string> = {};
  const taken = new Map<string, string>();
  for (const [name] of entriesOf(tensors)) {
    const { leaf } = splitName(name);
    const merged = toMergedName(name);
    if (isAdapterLeaf(leaf) && merged === undefined) {
      problems.push(`"${name}": an adapter tensor; merge the adapters into the base weights first`);
    } else if (merged === undefined) {
      problems.push(`"${name}": no Hugging Face name for the leaf "${leaf}" (known: .w, .b, .table, .gamma, .beta)`);
    } else {
      const full = `${options.prefix ?? ""}${merged}`;
      const other = taken.get(full);
      if (other !== undefined) problems.push(`"${name}" and "${other}" would both be written as "${full}"`);
      taken.set(full, name);
      names[name] = full;
    }
  }
  if (problems.length > 0) throw new CheckpointError(`${path}: cannot export the merged model (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`);
  const out = new Map(entriesOf(tensors).map(([name, t]) => [names[name]!, t]));
  await writeSafetensors(path, out, options.metadata ?? { format: "pt" });
  return names;
}
