// The model of the main job and the entries `dorafuse compile` turns into typed modules.
//
// A byte-level GPT: token and learned position embeddings, `layers` pre-norm blocks (LayerNorm,
// causal multi-head attention with q/k/v/o projections, a GELU MLP of width 4·dim), a final
// LayerNorm and an LM head over the 256 byte values: core's nn.transformerLM, whose tree puts
// layers at PEFT's module paths (`blocks.0.attn.q`, `blocks.0.mlp.up`, …). With its `adapters`
// option every projection runs by its keys: a plain linear, LoRA, or DoRA through the
// factored path the compiler fuses into its DoRA kernels (dropout on the adapter input). So one forward serves pretraining, full fine-tuning, LoRA
// and DoRA.
//
// `finetuneEntries(config)` gives the ten entries of a run (see ENTRY_NAMES); a run writes a
// two-line module that calls it with its configuration (`entriesModule`) and compiles that
// module ahead of time, so `dorafuse compile <run>/gen/entries.ts --entry dora --out …`
// reproduces any of them by hand.
import {
  adamw,
  adapt,
  adapterMask,
  crossEntropy,
  evaluate,
  nn,
  randomKey,
  spec,
  warmupCosineDecay,
  type AdaptConfig,
  type Key,
  type Mask,
  type Tensor,
} from "@dorafuse/core";
import { defineEntry, defineEvalStep, defineTrainStep, type AotEntry, type StepContext } from "@dorafuse/compiler";
import { VOCAB } from "./data.js";

export interface ModelConfig {
  readonly layers: number;
  readonly dim: number;
  readonly heads: number;
  /** Context length (the position table's size, and the training window). */
  readonly seq: number;
}

export interface RunConfig extends ModelConfig {
  /** Windows per training and evaluation batch. */
  readonly batch: number;
  /** Sequences the sampling forward runs at once (one per prompt). */
  readonly sampleBatch: number;
  readonly rank: number;
  readonly alpha: number;
  /** PEFT's lora_dropout on the adapters' input. */
  readonly dropout: number;
  readonly pretrainSteps: number;
  readonly finetuneSteps: number;
  /** Peak learning rates (AdamW, linear warm-up then cosine decay to 10%). */
  readonly lr: { readonly pretrain: number; readonly full: number; readonly adapter: number };
  readonly seed: number;
}

export type Method = "full" | "lora" | "dora";
export const METHODS: readonly Method[] = ["full", "lora", "dora"];

/** PEFT's target_modules: every attention projection and both MLP projections. */
export const TARGETS = ["q", "k", "v", "o", "up", "down"] as const;

/** The adapter configuration of a method (core's AdaptConfig, PEFT's LoraConfig names). */
export function adapterConfig(cfg: RunConfig, kind: "lora" | "dora"): AdaptConfig {
  return { kind, targets: TARGETS, rank: cfg.rank, alpha: cfg.alpha, dropout: cfg.dropout };
}

type F = Tensor<number[], "f32">;
type Ids = Tensor<[number, number], "i32">;
interface Linear {
  readonly w: unknown;
}
interface Block {
  readonly ln1: { gamma: unknown; beta: unknown };
  readonly attn: { q: Linear; k: Linear; v: Linear; o: Linear };
  readonly ln2: { gamma: unknown; beta: unknown };
  readonly mlp: { up: Linear; down: Linear };
}
/** nn.transformerLM's parameter tree; adapted layers carry loraA, loraB (and m) beside w and b. */
export interface Params {
  readonly tokens: { table: unknown };
  readonly positions: { table: unknown };
  readonly blocks: readonly Block[];
  readonly lnf: { gamma: unknown; beta: unknown };
  readonly head: Linear;
}

export const lmConfig = (m: ModelConfig) => ({ vocab: VOCAB, dim: m.dim, heads: m.heads, hidden: 4 * m.dim, layers: m.layers, maxSeq: m.seq });

/** Randomly initialized base parameters (GPT-2's 0.02 embeddings, PyTorch's linear init), as host tensors. */
export function initParams(m: ModelConfig, seed: number): Params {
  return evaluate((k) => nn.transformerLM.init(k, lmConfig(m)), [randomKey(seed)]) as unknown as Params;
}

/** `base` with a LoRA or DoRA adapter on every target (B = 0 and m = ‖W‖: the same function as base). */
export function adaptParams(base: Params, cfg: AdaptConfig, seed: number): Params {
  return evaluate((k: never, p: never) => adapt(k, p, cfg).params, [randomKey(seed), base] as never) as unknown as Params;
}

/**
 * Logits [batch, seq, 256] of byte ids [batch, seq]. `key` draws the adapters' dropout (one
 * key per projection); null evaluates deterministically.
 */
export function logits(p: Params, ids: Ids, m: ModelConfig, adapter: AdaptConfig | undefined, key: Key | null): F {
  // nn.transformerLM runs each adapter on its factored path (fused into the DoRA kernels) and
  // splits the dropout key per layer; without an adapter every layer is plain
  const run = adapter ? { adapters: adapter, ...(key && adapter.dropout ? { key } : { deterministic: true }) } : {};
  return nn.transformerLM.apply(p as never, ids as never, { heads: m.heads, ...run }) as F;
}

export interface Batch {
  readonly inputs: Ids;
  readonly targets: Ids;
}

/** Mean next-byte cross-entropy in nats (the loss trainStep and evalStep take). */
export function lossFor(m: ModelConfig, adapter: AdaptConfig | undefined) {
  return (p: Params, batch: Batch, ctx: StepContext): Tensor<[], "f32"> => {
    const out = logits(p, batch.inputs, m, adapter, ctx.training ? ctx.key : null);
    return crossEntropy(out as never, batch.targets as never) as Tensor<[], "f32">;
  };
}

/** AdamW with linear warm-up (10% of the steps, at least 1) and cosine decay to 10% of the peak; gradients clipped at 1. */
export function optimizer(peak: number, steps: number, mask?: Mask) {
  const warmupSteps = Math.max(1, Math.round(steps / 10));
  const lr = warmupCosineDecay({ peak, warmupSteps, decaySteps: Math.max(steps, warmupSteps + 1), end: peak / 10 });
  return adamw({ lr, weightDecay: 0.01, clipNorm: 1, ...(mask ? { mask } : {}) });
}

/** The entries a run compiles, by name. */
export const ENTRY_NAMES = ["pretrain", "full", "lora", "dora", "evalBase", "evalLora", "evalDora", "forward"] as const;
export type EntryName = (typeof ENTRY_NAMES)[number];

/** The evaluation entry of a model of each kind (full fine-tuning keeps the base tree). */
export const EVAL_ENTRY: Record<"base" | Method, EntryName> = { base: "evalBase", full: "evalBase", lora: "evalLora", dora: "evalDora" };

/**
 * Every entry of a run. The parameters given here are a fresh random initialization: they fix
 * the shapes, and their values become each compiled module's initial checkpoint (with the
 * optimizer's initial state). The fine-tuning steps start from the pretrained weights, which
 * the run writes into them after pretraining. Evaluation entries hold the parameters as state,
 * copied on the GPU from the training step they follow. Sampling runs one forward of the
 * plain tree: every model is sampled from its merged weights (adapters folded in, which in
 * evaluation mode is the same function), the file a user would deploy. The forward runs one
 * row per prompt: generating is one call per byte, so its cost is what sampling costs.
 */
export function finetuneEntries(cfg: RunConfig): Record<EntryName, AotEntry> {
  const base = initParams(cfg, cfg.seed);
  const lora = adapterConfig(cfg, "lora");
  const dora = adapterConfig(cfg, "dora");
  const params = { base, lora: adaptParams(base, lora, cfg.seed + 1), dora: adaptParams(base, dora, cfg.seed + 1) };
  const batch = (b: number) => ({ inputs: spec([b, cfg.seq], "i32"), targets: spec([b, cfg.seq], "i32") });
  const train = (p: Params, peak: number, steps: number, adapter?: AdaptConfig) => {
    const trainable = adapter ? adapterMask(p) : undefined;
    return defineTrainStep(lossFor(cfg, adapter) as never, optimizer(peak, steps, trainable), {
      params: p,
      batch: batch(cfg.batch),
      key: cfg.seed + 2,
      ...(trainable ? { trainable } : {}),
      ...(adapter ? { adapter } : {}),
    });
  };
  const evalOf = (p: Params, adapter?: AdaptConfig) => defineEvalStep(lossFor(cfg, adapter) as never, { params: p, batch: batch(cfg.batch) });
  return {
    pretrain: train(base, cfg.lr.pretrain, cfg.pretrainSteps),
    full: train(base, cfg.lr.full, cfg.finetuneSteps),
    lora: train(params.lora, cfg.lr.adapter, cfg.finetuneSteps, lora),
    dora: train(params.dora, cfg.lr.adapter, cfg.finetuneSteps, dora),
    evalBase: evalOf(base),
    evalLora: evalOf(params.lora, lora),
    evalDora: evalOf(params.dora, dora),
    // logits of every position of `sampleBatch` sequences, the parameters as state
    forward: defineEntry((q: Params, ids: Ids) => ({ params: q, logits: logits(q, ids, cfg, undefined, null) }), [base, spec([cfg.sampleBatch, cfg.seq], "i32")], {
      names: ["params", "ids"],
      state: { params: 0 },
    }),
  };
}

/** The module a run compiles: its configuration, and the entries from this file. */
export function entriesModule(cfg: RunConfig, modelUrl: string): string {
  return [
    `// Generated by examples/finetune for one run: the entries of src/model.ts at this run's configuration.`,
    `// Compile one by hand: dorafuse compile <this file> --entry dora --out <folder>`,
    `import { finetuneEntries } from ${JSON.stringify(modelUrl)};`,
    "",
    `export const config = ${JSON.stringify(cfg)};`,
    `export const { ${ENTRY_NAMES.join(", ")} } = finetuneEntries(config);`,
    "",
  ].join("\n");
}
