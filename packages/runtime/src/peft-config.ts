// PEFT's adapter_config.json for a LoRA / DoRA adapter: the fields LoraConfig serializes, the
// defaults dorafuse writes, the checks both export and import make, and PEFT's rules for which
// modules an adapter targets and which rank and alpha each one gets.
//
// Written as `LoraConfig.save_pretrained` writes it (`json.dumps(indent=2, sort_keys=True)`,
// `inference_mode: true`). The default field set is the one PEFT has serialized since 0.10, so
// older and newer PEFT load it alike; fields a caller adds or a file holds are kept as they are.

import { CheckpointError } from "./errors.js";

export interface PeftLoraConfig {
  peft_type: "LORA";
  /** Rank of every layer unless `rank_pattern` says otherwise. */
  r: number;
  lora_alpha: number;
  use_dora: boolean;
  /** Scale alpha / √r instead of alpha / r. */
  use_rslora: boolean;
  /** Module names matched as dotted-path suffixes, or one regular expression for the whole path (or "all-linear"). */
  target_modules: string[] | string | null;
  lora_dropout: number;
  bias: "none" | "all" | "lora_only";
  fan_in_fan_out: boolean;
  task_type: string | null;
  base_model_name_or_path: string | null;
  modules_to_save: string[] | null;
  init_lora_weights: boolean | string;
  inference_mode: boolean;
  /** Module-name pattern → rank, for layers whose rank differs from `r`. */
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  /** Anything else PEFT writes (revision, layers_to_transform, loftq_config, …), kept as found. */
  [field: string]: unknown;
}

/** What dorafuse writes for fields the caller leaves out: LoraConfig's own defaults, except `inference_mode` (save_pretrained sets it). */
export const PEFT_CONFIG_DEFAULTS: Omit<PeftLoraConfig, "r" | "lora_alpha"> = {
  peft_type: "LORA",
  task_type: null,
  inference_mode: true,
  base_model_name_or_path: null,
  revision: null,
  use_dora: false,
  use_rslora: false,
  target_modules: null,
  lora_dropout: 0,
  bias: "none",
  fan_in_fan_out: false,
  modules_to_save: null,
  init_lora_weights: true,
  layers_to_transform: null,
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  megatron_config: null,
  megatron_core: "megatron.core",
  loftq_config: {},
  layer_replication: null,
  auto_mapping: null,
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A complete config from what a caller or a file gave (defaults filled in); every problem is listed in one error naming `source`. */
export function normalizeConfig(given: unknown, source: string): PeftLoraConfig {
  if (!isRecord(given)) throw new CheckpointError(`${source}: expected a JSON object of LoraConfig fields, found ${JSON.stringify(given)?.slice(0, 60)}`);
  const config = { ...PEFT_CONFIG_DEFAULTS, ...given } as PeftLoraConfig;
  const problems: string[] = [];
  const field = (name: string, ok: boolean, expected: string) => {
    if (!ok) problems.push(`"${name}": expected ${expected}, found ${JSON.stringify(config[name])}`);
  };
  field("peft_type", config.peft_type === "LORA", `"LORA" (dorafuse reads and writes LoRA and DoRA adapters only)`);
  field("r", Number.isSafeInteger(config.r) && config.r > 0, "a positive integer");
  field("lora_alpha", typeof config.lora_alpha === "number" && Number.isFinite(config.lora_alpha), "a finite number");
  field("use_dora", typeof config.use_dora === "boolean", "true or false");
  field("use_rslora", typeof config.use_rslora === "boolean", "true or false");
  field("lora_dropout", typeof config.lora_dropout === "number" && config.lora_dropout >= 0 && config.lora_dropout < 1, "a number in [0, 1)");
  field("bias", ["none", "all", "lora_only"].includes(config.bias), `"none", "all" or "lora_only"`);
  const targets = config.target_modules;
  field("target_modules", targets === null || typeof targets === "string" || (Array.isArray(targets) && targets.every((t) => typeof t === "string")), "null, a string or a list of strings");
  for (const name of ["rank_pattern", "alpha_pattern"] as const) {
    const ranks = name === "rank_pattern";
    const ok = isRecord(config[name]) && Object.values(config[name]).every((v) => (ranks ? Number.isSafeInteger(v) && (v as number) > 0 : typeof v === "number" && Number.isFinite(v)));
    field(name, ok, `an object of module patterns to ${ranks ? "positive integers" : "finite numbers"}`);
  }
  field("lora_bias", config.lora_bias === undefined || config.lora_bias === false, "false (a bias on lora_B has no dorafuse counterpart)");
  field("modules_to_save", config.modules_to_save === null || (Array.isArray(config.modules_to_save) && config.modules_to_save.length === 0), "null (modules saved in full are not part of a dorafuse adapter: export them in the merged model)");
  if (problems.length === 0 && typeof targets === "string") compile(targets, "target_modules", source, true);
  if (problems.length > 0) throw new CheckpointError(`${source}: not a LoRA config dorafuse can use (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  ${problems.join("\n  ")}`);
  return config;
}

function compile(pattern: string, field: string, source: string, whole: boolean): RegExp {
  try {
    // PEFT: target_modules as a string is re.fullmatch'd; pattern keys are re.match'd as rf"(.*\.)?({key})$".
    return new RegExp(whole ? `^(?:${pattern})$` : `^(?:.*\\.)?(?:${pattern})$`);
  } catch (error) {
    throw new CheckpointError(`${source}: ${field} ${JSON.stringify(pattern)} is not a regular expression: ${(error as Error).message}`);
  }
}

/** Whether PEFT would put an adapter on the module at `path` (true for "all-linear", which needs the model to decide). */
export function isTargeted(config: PeftLoraConfig, path: string, source: string): boolean {
  const targets = config.target_modules;
  if (targets === null || targets === "all-linear") return true;
  if (typeof targets === "string") return compile(targets, "target_modules", source, true).test(path);
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

function patternValue(patterns: Record<string, number>, field: string, path: string, source: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) if (compile(key, `${field} key`, source, false).test(path)) return value;
  return undefined;
}

/** The rank, alpha and scale PEFT gives the layer at `path`. */
export function layerScaling(config: PeftLoraConfig, path: string, source: string): { rank: number; alpha: number; scale: number } {
  const rank = patternValue(config.rank_pattern, "rank_pattern", path, source) ?? config.r;
  const alpha = patternValue(config.alpha_pattern, "alpha_pattern", path, source) ?? config.lora_alpha;
  return { rank, alpha, scale: config.use_rslora ? alpha / Math.sqrt(rank) : alpha / rank };
}

/** The file text: keys sorted at every level, two-space indent, as Python's json.dumps(indent=2, sort_keys=True). */
export function formatConfig(config: PeftLoraConfig): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (!isRecord(v)) return v;
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
  };
  return JSON.stringify(sorted(config), null, 2);
}
