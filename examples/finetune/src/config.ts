// The run's settings: defaults sized so the whole default run (compilation included) takes a
// few minutes on lavapipe with two CPU cores, and the command-line flags that change them.
import { parseArgs } from "node:util";
import { ReportError } from "./errors.js";
import type { RunConfig } from "./model.js";

export interface RunOptions {
  /** The output folder; the run writes into `<out>/<run>/`. */
  readonly out: string;
  readonly run: string;
  /** Validation batches per evaluation pass (each `batch` windows of `seq` bytes). */
  readonly evalBatches: number;
  /** Fine-tuning steps between validation passes (pretraining: four times as many). */
  readonly evalEvery: number;
  /** Checkpoints saved per fine-tuning method (evenly spread, the last step included). */
  readonly checkpoints: number;
  /** Bytes generated per prompt in samples.md. */
  readonly sampleTokens: number;
  readonly prompts: readonly string[];
}

export const DEFAULT_CONFIG: RunConfig = {
  layers: 4,
  dim: 128,
  heads: 4,
  seq: 64,
  batch: 8,
  sampleBatch: 3,
  rank: 8,
  alpha: 16,
  dropout: 0,
  pretrainSteps: 120,
  finetuneSteps: 40,
  lr: { pretrain: 3e-3, full: 1e-3, adapter: 5e-3 },
  seed: 0,
};

export const DEFAULT_PROMPTS = ["The whale ", "It is my duty to ", "Call me "];

const FLAGS = {
  layers: { type: "string" },
  dim: { type: "string" },
  heads: { type: "string" },
  seq: { type: "string" },
  batch: { type: "string" },
  rank: { type: "string" },
  alpha: { type: "string" },
  dropout: { type: "string" },
  "pretrain-steps": { type: "string" },
  "finetune-steps": { type: "string" },
  "lr-pretrain": { type: "string" },
  "lr-full": { type: "string" },
  "lr-adapter": { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  run: { type: "string" },
  "eval-batches": { type: "string" },
  "eval-every": { type: "string" },
  checkpoints: { type: "string" },
  "sample-tokens": { type: "string" },
  help: { type: "boolean" },
} as const;

export const USAGE = `usage: npm run main -- [flags]

Pretrains a byte-level GPT on the State of the Union addresses, fine-tunes it on Moby Dick with
DoRA, LoRA and full fine-tuning at the same step budget, and writes <out>/<run>/.

model     --layers 4 --dim 128 --heads 4 --seq 64 (context, bytes)
training  --batch 8 --pretrain-steps 120 --finetune-steps 40 --seed 0
          --lr-pretrain 3e-3 --lr-full 1e-3 --lr-adapter 5e-3   (AdamW peaks; warm-up + cosine)
adapters  --rank 8 --alpha 16 --dropout 0   (targets q, k, v, o, up, down; LoRA and DoRA alike)
run       --out out --run <name> (default: from the settings) --eval-batches 6 --eval-every 10
          --checkpoints 4 --sample-tokens 80`;

function number(name: string, text: string, check: (v: number) => boolean, what: string): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || !check(v)) throw new ReportError(`--${name}: expected ${what}, found ${JSON.stringify(text)}`);
  return v;
}
const positiveInt = (v: number) => Number.isSafeInteger(v) && v >= 1;
const positive = (v: number) => v > 0;

/** The run's name from its settings, so the same command writes the same folder. */
export function runName(c: RunConfig): string {
  return `l${c.layers}-d${c.dim}-s${c.seq}-b${c.batch}-p${c.pretrainSteps}-f${c.finetuneSteps}-r${c.rank}-seed${c.seed}`;
}

/** The configuration and run options from command-line arguments (flags not given keep their defaults). */
export function parseFlags(argv: readonly string[]): { config: RunConfig; options: RunOptions } | { help: string } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ReportError(`${(error as Error).message}\n\n${USAGE}`);
  }
  const v = parsed.values as Partial<Record<keyof typeof FLAGS, string>> & { help?: boolean };
  if (v.help) return { help: USAGE };
  const int = (name: keyof typeof FLAGS, fallback: number) => (v[name] === undefined ? fallback : number(name, v[name], positiveInt, "a positive integer"));
  const real = (name: keyof typeof FLAGS, fallback: number, check = positive, what = "a positive number") => (v[name] === undefined ? fallback : number(name, v[name], check, what));
  const d = DEFAULT_CONFIG;
  const dim = int("dim", d.dim);
  const config: RunConfig = {
    layers: int("layers", d.layers),
    dim,
    heads: int("heads", v.dim !== undefined && v.heads === undefined ? Math.max(1, Math.round(dim / 32)) : d.heads),
    seq: int("seq", d.seq),
    batch: int("batch", d.batch),
    sampleBatch: d.sampleBatch,
    rank: int("rank", d.rank),
    alpha: real("alpha", v.rank !== undefined && v.alpha === undefined ? 2 * int("rank", d.rank) : d.alpha),
    dropout: real("dropout", d.dropout, (x) => x >= 0 && x < 1, "a rate in [0, 1)"),
    pretrainSteps: int("pretrain-steps", d.pretrainSteps),
    finetuneSteps: int("finetune-steps", d.finetuneSteps),
    lr: { pretrain: real("lr-pretrain", d.lr.pretrain), full: real("lr-full", d.lr.full), adapter: real("lr-adapter", d.lr.adapter) },
    seed: v.seed === undefined ? d.seed : number("seed", v.seed, (x) => Number.isSafeInteger(x) && x >= 0, "a non-negative integer"),
  };
  if (config.dim % config.heads !== 0) throw new ReportError(`--heads: ${config.heads} heads must divide --dim ${config.dim}`);
  if (config.rank > config.dim) throw new ReportError(`--rank: ${config.rank} exceeds --dim ${config.dim}`);
  const options: RunOptions = {
    out: v.out ?? "out",
    run: v.run ?? runName(config),
    evalBatches: int("eval-batches", 6),
    evalEvery: int("eval-every", Math.max(1, Math.round(config.finetuneSteps / 4))),
    checkpoints: int("checkpoints", 4),
    sampleTokens: int("sample-tokens", 80),
    prompts: DEFAULT_PROMPTS,
  };
  return { config, options };
}
