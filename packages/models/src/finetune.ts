// Fine-tuning a Hugging Face model folder on a text file, as `dorafuse finetune` runs it: the
// frozen base (f16 or f32) with DoRA or LoRA adapters on the chosen modules, or every weight
// (full), trained by one compiled step (trainStep: forward, backward, accumulation, clipping,
// AdamW) with validation at intervals. The output folder is what a user keeps:
//   adapter_config.json, adapter_model.safetensors   the PEFT adapter (LoRA / DoRA), or
//   config.json, model.safetensors, tokenizer…        the fine-tuned model (full)
//   finetune.json                                     the settings, which --resume must match
//   checkpoint.safetensors                            the state to resume from (adapters and
//                                                     optimizer moments; not the frozen base)
//   log.jsonl                                         training and validation loss per step
// A run is a pure function of its settings: batches come from (seed, step), dropout from the
// step's key, which the checkpoint holds, so an interrupted run resumed from its checkpoint
// ends bit for bit where an uninterrupted one does.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { adamw, adapt, adapterMask, constantSchedule, evaluate, HostTensor, linearSchedule, randomKey, warmupCosineDecay, type AdapterOptions, type Schedule } from "@dorafuse/core";
import { evalStep, trainStep } from "@dorafuse/compiler";
import { createDevice, PEFT_CONFIG_FILE, writeFileAtomically, type Device } from "@dorafuse/runtime";
import { attachAdapter } from "./adapter.js";
import { checkWindows, evaluationBatches, packDocuments, readDocuments, splitTokens, trainingBatch } from "./data.js";
import { ModelError } from "./errors.js";
import { languageModelLoss, lmBatchSpec, stackWindows, uploadTables } from "./lm.js";
import { loadHostModel, readModelConfig } from "./model.js";
import { saveModel } from "./save.js";

export type Method = "dora" | "lora" | "full";
export type ScheduleName = "cosine" | "linear" | "constant";

/** What a run is: every field has a value once resolved, and finetune.json records them. */
export interface FinetuneSettings {
  readonly model: string;
  readonly data: string;
  /** A validation file; without it the last `valFraction` of the data is held out. */
  readonly val: string | null;
  readonly method: Method;
  readonly rank: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly rsLora: boolean;
  readonly targets: readonly string[];
  readonly steps: number;
  readonly batch: number;
  readonly seq: number;
  readonly lr: number;
  readonly schedule: ScheduleName;
  readonly warmup: number;
  readonly weightDecay: number;
  readonly clipNorm: number;
  readonly gradAccum: number;
  readonly valFraction: number;
  readonly evalEvery: number;
  /** At most this many validation batches per evaluation (consecutive windows from the start). */
  readonly evalBatches: number;
  readonly saveEvery: number;
  readonly seed: number;
  /** The frozen base's matrices on the GPU. */
  readonly dtype: "f16" | "f32";
  /** A PEFT adapter folder to continue training. */
  readonly adapter: string | null;
}

export type FinetuneEvent =
  | { readonly type: "start"; readonly settings: FinetuneSettings; readonly step: number; readonly trainTokens: number; readonly validationTokens: number; readonly scored: Scored; readonly trainable: number; readonly total: number }
  | { readonly type: "step"; readonly step: number; readonly loss: number; readonly tokens: number; readonly seconds: number }
  | { readonly type: "eval"; readonly step: number; readonly loss: number }
  | { readonly type: "save"; readonly step: number };

/** The validation tokens every evaluation scores, and the UTF-8 bytes they decode to (nats/token × tokens / bytes / ln 2 is bits/byte). */
export interface Scored {
  readonly tokens: number;
  readonly bytes: number;
}

export type FinetuneOptions = Partial<Omit<FinetuneSettings, "model" | "data" | "val" | "adapter">> & {
  readonly model: string;
  readonly data: string;
  readonly out: string;
  readonly val?: string;
  readonly adapter?: string;
  /** Continue the run in `out` from its checkpoint (the settings must be the same). */
  readonly resume?: boolean;
  readonly device?: Device;
  readonly report?: (event: FinetuneEvent) => void;
  /** Stops after the current step; the checkpoint and outputs are written first. */
  readonly signal?: AbortSignal;
};

export interface FinetuneResult {
  readonly settings: FinetuneSettings;
  readonly out: string;
  /** Steps completed (the last step, or where it was interrupted). */
  readonly step: number;
  readonly interrupted: boolean;
  readonly losses: readonly { step: number; loss: number }[];
  /** Validation loss (nats/token) at step 0 and every evalEvery steps. */
  readonly validation: readonly { step: number; loss: number }[];
  readonly trainable: number;
  readonly scored: Scored;
  /** Seconds spent in training steps in this call, and the tokens they processed. */
  readonly seconds: number;
  readonly tokens: number;
}

export const FINETUNE_FILES = { settings: "finetune.json", checkpoint: "checkpoint.safetensors", log: "log.jsonl" } as const;

const count = (name: string, v: number, min = 1) => {
  if (!Number.isInteger(v) || v < min) throw new ModelError(`--${name} must be a whole number ≥ ${min}, found ${v}`);
  return v;
};
const real = (name: string, v: number, ok: (v: number) => boolean, want: string) => {
  if (!Number.isFinite(v) || !ok(v)) throw new ModelError(`--${name} must be ${want}, found ${v}`);
  return v;
};

/** What an adapter folder to continue says about the settings (its problems are attachAdapter's to report). */
function adapterDefaults(dir: string | undefined): Partial<FinetuneOptions> {
  if (!dir) return {};
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(join(dir, PEFT_CONFIG_FILE), "utf8"));
  } catch {
    return {};
  }
  const given = { method: c.use_dora ? "dora" : "lora", rank: c.r, alpha: c.lora_alpha, rsLora: c.use_rslora, dropout: c.lora_dropout, targets: Array.isArray(c.target_modules) ? c.target_modules : undefined };
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<FinetuneOptions>;
}

/** The settings with every default filled in (from the adapter continued, if any) and every value checked. */
export function resolveSettings(options: FinetuneOptions, device: Device): FinetuneSettings {
  const o: FinetuneOptions = { ...adapterDefaults(options.adapter), ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as FinetuneOptions;
  const { family, config } = readModelConfig(o.model);
  const method = o.method ?? "dora";
  if (!["dora", "lora", "full"].includes(method)) throw new ModelError(`--method must be dora, lora or full, found ${JSON.stringify(method)}`);
  const hasF16 = device.features.has("shader-f16");
  if (o.adapter && method === "full") throw new ModelError(`--adapter continues training an adapter; --method full trains the base weights instead: give one of them`);
  if (o.dtype === "f16" && method === "full") throw new ModelError("--method full trains the base weights, which are kept in f32: drop --dtype f16");
  if (o.dtype === "f16" && !hasF16) throw new ModelError(`--dtype f16: the adapter "${device.adapter.description || device.adapter.device}" has no shader-f16; use --dtype f32`);
  if (o.dtype !== undefined && o.dtype !== "f16" && o.dtype !== "f32") throw new ModelError(`--dtype must be f16 or f32, found ${JSON.stringify(o.dtype)}`);
  const steps = count("steps", o.steps ?? 200);
  const rank = count("rank", o.rank ?? 8);
  const seq = count("seq", o.seq ?? Math.min(256, config.maxPositions), 2);
  if (seq > config.maxPositions) throw new ModelError(`--seq ${seq} is longer than ${o.model}'s context (${config.maxPositions} positions)`);
  const warmup = count("warmup", o.warmup ?? Math.min(100, Math.floor(steps / 10)), 0);
  const schedule = o.schedule ?? "cosine";
  if (!["cosine", "linear", "constant"].includes(schedule)) throw new ModelError(`--schedule must be cosine, linear or constant, found ${JSON.stringify(schedule)}`);
  if (schedule !== "constant" && warmup >= steps) throw new ModelError(`--warmup ${warmup} must be below --steps ${steps}`);
  return {
    model: o.model,
    data: o.data,
    val: o.val ?? null,
    method,
    rank,
    alpha: real("alpha", o.alpha ?? 2 * rank, (v) => v > 0, "positive"),
    dropout: real("dropout", o.dropout ?? 0, (v) => v >= 0 && v < 1, "in [0, 1)"),
    rsLora: o.rsLora ?? false,
    targets: [...(o.targets ?? family.adapterTargets)],
    steps,
    batch: count("batch", o.batch ?? 4),
    seq,
    lr: real("lr", o.lr ?? (method === "full" ? 2e-5 : 2e-4), (v) => v > 0, "positive"),
    schedule,
    warmup,
    weightDecay: real("weight-decay", o.weightDecay ?? (method === "full" ? 0.01 : 0), (v) => v >= 0, "≥ 0"),
    clipNorm: real("clip-norm", o.clipNorm ?? 1, (v) => v > 0, "positive"),
    gradAccum: count("grad-accum", o.gradAccum ?? 1),
    valFraction: real("val-fraction", o.valFraction ?? 0.1, (v) => v > 0 && v < 1, "in (0, 1)"),
    evalEvery: count("eval-every", o.evalEvery ?? Math.max(1, Math.round(steps / 10))),
    evalBatches: count("eval-batches", o.evalBatches ?? 8),
    saveEvery: count("save-every", o.saveEvery ?? 100),
    seed: count("seed", o.seed ?? 0, 0),
    dtype: o.dtype ?? (method !== "full" && hasF16 ? "f16" : "f32"),
    adapter: o.adapter ?? null,
  };
}

function learningRate(s: FinetuneSettings): Schedule {
  if (s.schedule === "constant") return s.warmup > 0 ? linearSchedule({ from: 0, to: s.lr, steps: s.warmup }) : constantSchedule(s.lr);
  if (s.schedule === "linear") {
    const decay = linearSchedule({ from: s.lr, to: 0, steps: s.steps - s.warmup, begin: s.warmup });
    if (s.warmup === 0) return decay;
    const warm = linearSchedule({ from: 0, to: s.lr, steps: s.warmup });
    return (step) => warm(step).minimum(decay(step));
  }
  return warmupCosineDecay({ peak: s.lr, warmupSteps: s.warmup, decaySteps: s.steps, end: s.lr / 10 });
}

/** Token streams for training and validation, each long enough for one window and its next token. */
async function readData(s: FinetuneSettings, encode: (t: string) => number[], eos: number | undefined) {
  const tokens = packDocuments(await readDocuments(s.data), encode, eos);
  const { train, validation } = s.val ? { train: tokens, validation: packDocuments(await readDocuments(s.val), encode, eos) } : splitTokens(tokens, s.valFraction, s.data);
  checkWindows(train, s.seq, `${s.data}: the training text (${s.val ? "all" : `the first ${Math.round((1 - s.valFraction) * 100)}%`} of it)`);
  checkWindows(validation, s.seq, s.val ? `${s.val}: the validation text` : `${s.data}: the validation text (its last ${Math.round(s.valFraction * 100)}%: give a larger --val-fraction or a --val file)`);
  return { train, validation };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** The settings' fields that differ from the recorded run's (how often it checkpoints and validates changes nothing it trains). */
function differences(now: Record<string, unknown>, then: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(now), ...Object.keys(then)].filter((k) => k !== "saveEvery" && k !== "evalEvery"));
  return [...keys].filter((k) => JSON.stringify(now[k]) !== JSON.stringify(then[k])).map((k) => `${k}: ${JSON.stringify(then[k])} then, ${JSON.stringify(now[k])} now`);
}

/** Parameters with the adapters on (fresh, or continued from a PEFT folder), and the adapter options. */
async function adaptedParams(s: FinetuneSettings, base: unknown): Promise<{ params: unknown; options: AdapterOptions }> {
  if (s.adapter) {
    const attached = await attachAdapter(s.adapter, base, (_name, shape, data) => new HostTensor([...shape], Float64Array.from(data), "f32"));
    const c = attached.adapter.config;
    const given = { method: c.use_dora ? "dora" : "lora", rank: c.r, alpha: c.lora_alpha, rsLora: c.use_rslora };
    const bad = Object.entries(given).filter(([k, v]) => s[k as keyof FinetuneSettings] !== v);
    if (bad.length) throw new ModelError(`${s.adapter}: the adapter has ${bad.map(([k, v]) => `${k} ${v}`).join(", ")}, but this run asks for ${bad.map(([k]) => `${k} ${s[k as keyof FinetuneSettings]}`).join(", ")}: give the adapter's values (or leave the flags out)`);
    return { params: attached.params, options: { rank: s.rank, alpha: s.alpha, rsLora: s.rsLora, dropout: s.dropout } };
  }
  const options = { rank: s.rank, alpha: s.alpha, rsLora: s.rsLora, dropout: s.dropout };
  const params = evaluate((k: never, p: never) => adapt(k, p, { kind: s.method as "lora" | "dora", targets: s.targets, ...options }).params, [randomKey(s.seed + 1), base] as never);
  return { params, options };
}

/** Fine-tunes `o.model` on `o.data` into `o.out` (see the top of this file). */
export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const device = o.device ?? (await createDevice());
  try {
    return await run(o, device);
  } finally {
    if (!o.device) device.dispose();
  }
}

async function run(o: FinetuneOptions, device: Device): Promise<FinetuneResult> {
  const s = resolveSettings(o, device);
  const files = { settings: join(o.out, FINETUNE_FILES.settings), checkpoint: join(o.out, FINETUNE_FILES.checkpoint), log: join(o.out, FINETUNE_FILES.log) };
  // an existing run is never overwritten by accident, and a resumed one must be the same run
  const recorded = { ...s, dataSha256: sha256(s.data), ...(s.val ? { valSha256: sha256(s.val) } : {}) };
  if (o.resume) {
    if (!existsSync(files.checkpoint) || !existsSync(files.settings)) throw new ModelError(`${o.out}: nothing to resume (no ${FINETUNE_FILES.checkpoint} and ${FINETUNE_FILES.settings})`);
    const diff = differences(recorded, JSON.parse(await readFile(files.settings, "utf8")));
    if (diff.length) throw new ModelError(`${o.out}: --resume continues the same run, but the settings differ (${diff.join("; ")})`);
  } else if (existsSync(files.checkpoint)) {
    throw new ModelError(`${o.out}: holds a run already (${FINETUNE_FILES.checkpoint}): --resume to continue it, or choose another --out`);
  }

  const host = await loadHostModel(s.model, { dtype: s.dtype });
  const { family, config, tokenizer } = host;
  if (!tokenizer) throw new ModelError(`${s.model}: no tokenizer.json (and its vocabulary is not 256 bytes), so its text cannot be tokenized`);
  const { train, validation } = await readData(s, (t) => tokenizer.encode(t), config.eos[0]);

  const adapters = s.method === "full" ? undefined : await adaptedParams(s, host.params);
  const params = adapters?.params ?? host.params;
  const trainable = adapters ? adapterMask(params) : undefined;
  const loss = languageModelLoss(family, config, adapters?.options);
  const optimizer = adamw({ lr: learningRate(s), weightDecay: s.weightDecay, clipNorm: s.clipNorm, ...(trainable ? { mask: trainable } : {}) });
  const step = await trainStep(loss as never, optimizer, {
    params,
    batch: lmBatchSpec(family, config, s.batch, s.seq),
    accumulate: s.gradAccum,
    key: s.seed,
    device,
    ...(trainable ? { trainable } : {}),
    ...(adapters ? { adapter: { kind: s.method as "lora" | "dora", ...adapters.options } } : {}),
  });
  // the frozen base is the model folder's: checkpoints hold only what trains and its moments
  const skip = adapters ? (key: string) => key.startsWith("params.") && !/\.(loraA|loraB|m)$/.test(key) : undefined;
  const states = step.program.manifest.state;
  const size = (p: (k: string) => boolean) => states.filter((x) => x.role === "param" && p(x.key)).reduce((n, x) => n + x.shape.reduce((a, b) => a * b, 1), 0);
  const trainableCount = size((k) => !skip?.(k));

  // everything this run put on the device goes when it ends, however it ends (the device may be the caller's)
  const disposables: { evaluator?: { dispose(): void }; tables: { dispose(): void }[] } = { tables: [] };
  try {
    return await loop();
  } finally {
    disposables.evaluator?.dispose();
    for (const t of disposables.tables) t.dispose();
    step.dispose();
  }

  async function loop(): Promise<FinetuneResult> {
    await mkdir(o.out, { recursive: true });
    let log: { step: number; loss?: number; val?: number }[] = [];
    if (o.resume) {
      await step.restore(files.checkpoint, skip ? { skip } : {});
      log = (await readFile(files.log, "utf8").catch(() => "")).split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.step <= step.stepCount);
      await writeFileAtomically(files.log, [Buffer.from(log.map((e) => `${JSON.stringify(e)}\n`).join(""))]);
    } else {
      await writeFileAtomically(files.settings, [Buffer.from(`${JSON.stringify(recorded, null, 2)}\n`)]);
      await writeFileAtomically(files.log, [Buffer.alloc(0)]);
    }
    const append = async (e: { step: number; loss?: number; val?: number }) => {
      log.push(e);
      await appendFile(files.log, `${JSON.stringify(e)}\n`);
    };

    const evalBatch = Math.min(s.batch, Math.floor((validation.length - 1) / s.seq));
    const evaluator = (disposables.evaluator = await evalStep(loss as never, { params: step, batch: lmBatchSpec(family, config, evalBatch, s.seq), device }));
    const evalTables = uploadTables(device, family, config, s.seq);
    disposables.tables.push(...Object.values(evalTables));
    const valBatches = evaluationBatches(validation, { batch: evalBatch, seq: s.seq, maxBatches: s.evalBatches });
    const scored = { tokens: valBatches.length * evalBatch * s.seq, bytes: valBatches.reduce((n, b) => n + Buffer.byteLength(tokenizer!.decode(Array.from(b.targets.data))), 0) };
    const validate = async (at: number) => {
      let sum = 0;
      for (const b of valBatches) sum += await (await evaluator.evaluate({ ...b, ...evalTables } as never)).loss;
      const value = sum / valBatches.length;
      await append({ step: at, val: value });
      o.report?.({ type: "eval", step: at, loss: value });
    };
    const save = async () => {
      await step.save(files.checkpoint, skip ? { skip } : {});
      await writeOutputs();
      o.report?.({ type: "save", step: step.stepCount });
    };
    const writeOutputs = async () => {
      if (s.method === "full") return void (await saveModel(o.out, family, config, await step.params(), { dtype: host.weights.fileDType, companionsFrom: s.model }));
      await step.exportAdapter(o.out, {
        base_model_name_or_path: s.model,
        task_type: "CAUSAL_LM",
        target_modules: [...s.targets],
        // transformers' Conv1D stores [in, out]; PEFT marks adapters on it so (the factors themselves are PEFT's usual [r, in] and [out, r])
        fan_in_fan_out: step.program.manifest.adapter!.layers.some((l) => family.names.conv1d.test(l)),
      });
    };

    o.report?.({ type: "start", settings: s, step: step.stepCount, trainTokens: train.length, validationTokens: validation.length, scored, trainable: trainableCount, total: size(() => true) });
    if (step.stepCount === 0) await validate(0);
    const tables = uploadTables(device, family, config, s.seq, s.gradAccum);
    disposables.tables.push(...Object.values(tables));
    const tokensPerStep = s.gradAccum * s.batch * s.seq;
    let seconds = 0;
    let tokens = 0;
    while (step.stepCount < s.steps && !o.signal?.aborted) {
      const at = step.stepCount;
      const micro = Array.from({ length: s.gradAccum }, (_, k) => trainingBatch(train, { batch: s.batch, seq: s.seq, seed: s.seed, step: at * s.gradAccum + k }));
      const t0 = performance.now();
      const r = await step.step({ ...(s.gradAccum === 1 ? micro[0]! : stackWindows(micro)), ...tables } as never);
      const value = await r.loss;
      const took = (performance.now() - t0) / 1000;
      seconds += took;
      tokens += tokensPerStep;
      if (!Number.isFinite(value)) throw new ModelError(`step ${at + 1}: the training loss is ${value} (diverged: lower --lr); ${o.out} keeps its last checkpoint, from before it`);
      await append({ step: at + 1, loss: value });
      o.report?.({ type: "step", step: at + 1, loss: value, tokens: tokensPerStep, seconds: took });
      if ((at + 1) % s.evalEvery === 0 || at + 1 === s.steps) await validate(at + 1);
      if ((at + 1) % s.saveEvery === 0 && at + 1 < s.steps) await save();
    }
    await save();
    const done = step.stepCount;
    const losses = log.flatMap((e) => (e.loss !== undefined ? [{ step: e.step, loss: e.loss }] : []));
    const validationLog = log.flatMap((e) => (e.val !== undefined ? [{ step: e.step, loss: e.val }] : []));
    return { settings: s, out: o.out, step: done, interrupted: done < s.steps, losses, validation: validationLog, trainable: trainableCount, scored, seconds, tokens };
  }
}
