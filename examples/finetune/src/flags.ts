// The main job's flags and their defaults. The defaults are sized to finish in a few minutes on
// two CPU cores (lavapipe): 100 steps of 4 × 128 tokens per method, rank 8, one seed.
import { UsageError } from "./errors.js";

export type Method = "dora" | "lora" | "full";
export const METHODS: readonly Method[] = ["dora", "lora", "full"];

export interface JobOptions {
  /** The Hugging Face folder to fine-tune. */
  readonly model: string;
  /** A .txt or .jsonl file to fine-tune on; null: Moby Dick, written into the run folder. */
  readonly data: string | null;
  readonly methods: readonly Method[];
  /** Adapter ranks; every (adapter method, rank, seed) runs, full fine-tuning once per seed. */
  readonly ranks: readonly number[];
  readonly seeds: readonly number[];
  readonly steps: number;
  readonly batch: number;
  readonly seq: number;
  /** Peak learning rates: LoRA and DoRA, and full fine-tuning. */
  readonly lr: number;
  readonly lrFull: number;
  /** Validation batches (of batch × seq tokens) from the start of the held-out tail. */
  readonly evalBatches: number;
  readonly valFraction: number;
  /** New tokens per sample. */
  readonly sampleTokens: number;
  readonly out: string;
  /** The run folder's name under `out` (default: from the settings). */
  readonly run: string | null;
}

export const DEFAULTS: JobOptions = {
  model: "models/sotu-llama",
  data: null,
  methods: METHODS,
  ranks: [8],
  seeds: [0],
  steps: 100,
  batch: 4,
  seq: 128,
  lr: 2e-3,
  lrFull: 2e-4,
  evalBatches: 8,
  valFraction: 0.1,
  sampleTokens: 40,
  out: "examples/finetune/out",
  run: null,
};

export const USAGE = `usage: npm run main -- [flags]

Fine-tunes a Hugging Face model folder (default models/sotu-llama, pretrained on the State of
the Union addresses) on Moby Dick with DoRA, LoRA and full fine-tuning at the same steps,
batches and rank, then writes the results table, loss curves, the DoRA paper's ΔM/ΔD
analysis, samples, the PEFT adapters and the merged models to <out>/<run>/.
  --model DIR          the model folder to fine-tune (default ${DEFAULTS.model})
  --data FILE          a .txt or .jsonl text to fine-tune on (default: Moby Dick)
  --methods a,b        any of dora, lora, full (default ${DEFAULTS.methods.join(",")})
  --ranks 4,16         adapter ranks (default ${DEFAULTS.ranks.join(",")}); alpha = 2·rank
  --seeds 0,1,2        seeds (default ${DEFAULTS.seeds.join(",")}): batches and adapter initialization
  --steps N            optimizer steps per run (default ${DEFAULTS.steps})
  --batch B, --seq S   sequences per step and tokens per sequence (default ${DEFAULTS.batch}, ${DEFAULTS.seq})
  --lr LR              peak learning rate of LoRA and DoRA (default ${DEFAULTS.lr})
  --lr-full LR         peak learning rate of full fine-tuning (default ${DEFAULTS.lrFull})
  --eval-batches N     held-out batches scored (default ${DEFAULTS.evalBatches}); the last
                       --val-fraction (default ${DEFAULTS.valFraction}) of the text is held out
  --sample-tokens N    new tokens per sample (default ${DEFAULTS.sampleTokens})
  --out DIR            where run folders go (default ${DEFAULTS.out})
  --run NAME           the run folder's name (default: from the settings); it is replaced
  --help               this text

Every (method, rank, seed) runs; full fine-tuning has no rank and runs once per seed. With
several seeds the table gives mean ± sd per method and rank.`;

type Parser = (value: string, flag: string) => unknown;

const integer = (min: number) => (v: string, flag: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min) throw new UsageError(`${flag} must be a whole number ≥ ${min}, found ${JSON.stringify(v)}`);
  return n;
};
const positive = (v: string, flag: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, found ${JSON.stringify(v)}`);
  return n;
};
const fraction = (v: string, flag: string) => {
  const n = Number(v);
  if (v.trim() === "" || !(n > 0 && n < 1)) throw new UsageError(`${flag} must be in (0, 1), found ${JSON.stringify(v)}`);
  return n;
};
const list =
  (item: Parser) =>
  (v: string, flag: string): unknown[] => {
    const items = v.split(",").map((s) => s.trim());
    if (items.some((s) => s === "")) throw new UsageError(`${flag} needs a comma-separated list, found ${JSON.stringify(v)}`);
    const values = items.map((s) => item(s, flag));
    if (new Set(values).size !== values.length) throw new UsageError(`${flag} lists a value twice: ${JSON.stringify(v)}`);
    return values;
  };
const method = (v: string, flag: string) => {
  if (!(METHODS as readonly string[]).includes(v)) throw new UsageError(`${flag}: expected dora, lora or full, found ${JSON.stringify(v)}`);
  return v;
};
const text = (v: string) => v;
const name = (v: string, flag: string) => {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) throw new UsageError(`${flag} must be letters, digits, ".", "-" or "_", found ${JSON.stringify(v)}`);
  return v;
};

const FLAGS: Record<string, [keyof JobOptions, Parser]> = {
  "--model": ["model", text],
  "--data": ["data", text],
  "--methods": ["methods", list(method)],
  "--ranks": ["ranks", list(integer(1))],
  "--seeds": ["seeds", list(integer(0))],
  "--steps": ["steps", integer(1)],
  "--batch": ["batch", integer(1)],
  "--seq": ["seq", integer(2)],
  "--lr": ["lr", positive],
  "--lr-full": ["lrFull", positive],
  "--eval-batches": ["evalBatches", integer(1)],
  "--val-fraction": ["valFraction", fraction],
  "--sample-tokens": ["sampleTokens", integer(0)],
  "--out": ["out", text],
  "--run": ["run", name],
};

/** The options of `argv` (the arguments after `npm run main --`), or the usage for --help. */
export function parseFlags(argv: readonly string[]): { options: JobOptions } | { help: string } {
  const options: Record<string, unknown> = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { help: USAGE };
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const known = FLAGS[flag];
    if (!known) throw new UsageError(`unknown flag ${JSON.stringify(arg)} (npm run main -- --help lists them)`);
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith("--"))) throw new UsageError(`${flag} needs a value`);
    options[known[0]] = known[1](value, flag);
  }
  return { options: options as unknown as JobOptions };
}

/** One fine-tuning run of the job: a method, its rank (null for full) and a seed. */
export interface RunSpec {
  readonly method: Method;
  readonly rank: number | null;
  readonly seed: number;
}

/** Every run the options ask for: methods in order, then ranks, then seeds; full once per seed. */
export function runSpecs(o: Pick<JobOptions, "methods" | "ranks" | "seeds">): RunSpec[] {
  return o.methods.flatMap((method) =>
    (method === "full" ? [null] : o.ranks).flatMap((rank) => o.seeds.map((seed) => ({ method, rank, seed }))),
  );
}

/** A run's folder name: "dora-r8-s0", "full-s0". */
export function runName(r: RunSpec): string {
  return r.rank === null ? `${r.method}-s${r.seed}` : `${r.method}-r${r.rank}-s${r.seed}`;
}

/** The default run folder name: the settings that tell runs apart. */
export function defaultRunName(o: JobOptions): string {
  const model = o.model.replace(/[/\\]+$/, "").split(/[/\\]/).pop()!.replace(/[^A-Za-z0-9._-]/g, "_");
  return `${model}-steps${o.steps}-r${o.ranks.join("_")}-seed${o.seeds.join("_")}${o.data ? "-data" : ""}`;
}
