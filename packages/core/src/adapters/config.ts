// What every adapter shares: its options (rank, alpha, rsLora, dropout, detachNorm) as
// Hugging Face PEFT's LoraConfig names them, the scale they imply, the run-time options of
// an apply (the dropout key), and the one error kind of this folder.
import type { Tensor } from "../tensor/tensor.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { type Key, dropout as dropoutOp } from "../ops/random.js";

/** A misused adapter: bad options, parameters of the wrong shape or kind, targets that match nothing. */
export class AdapterError extends Error {
  override name = "AdapterError";
}

export interface AdapterOptions<R extends number = number> {
  /** Rank r of the update B·A (PEFT `r`). */
  readonly rank: R;
  /** PEFT `lora_alpha`; the update is scaled by alpha / r (alpha / √r with rsLora). */
  readonly alpha: number;
  /** Rank-stabilized LoRA (PEFT `use_rslora`): scale alpha / √r. Default false. */
  readonly rsLora?: boolean;
  /** Dropout rate on the adapter's input (PEFT `lora_dropout`), in [0, 1). Default 0. */
  readonly dropout?: number;
  /**
   * DoRA only: treat the norm ‖W + s·B·A‖ as a constant in the backward (the paper's §4.3,
   * PEFT's only mode). Default true. With false the gradient also flows through the norm.
   */
  readonly detachNorm?: boolean;
}

/** How one call runs: a key for dropout (training), or `deterministic` to skip it (evaluation). */
export interface ApplyOptions {
  readonly key?: Key;
  readonly deterministic?: boolean;
}

/**
 * The guard added to ‖V‖² (per row) before the square root, so a zero row gives a finite
 * norm and finite gradients. Small enough to vanish next to any float32 norm² above ~1e-5
 * (it is below half an ulp there), large enough that its square root (1e-6) is a normal
 * float32 and 1/n stays far from overflow.
 */
export const DORA_NORM_EPS = 1e-12;

/** s = alpha / r, or alpha / √r with rsLora. */
export function adapterScale(opts: AdapterOptions): number {
  checkOptions("adapter", opts);
  return opts.rsLora ? opts.alpha / Math.sqrt(opts.rank) : opts.alpha / opts.rank;
}

/** Throws an AdapterError naming `where` and the offending option. */
export function checkOptions(where: string, opts: AdapterOptions): void {
  const { rank, alpha, dropout = 0 } = opts;
  if (!Number.isInteger(rank) || rank < 1) throw new AdapterError(`${where}: rank must be a positive integer, found ${rank}`);
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw new AdapterError(`${where}: alpha must be a finite number, found ${alpha}`);
  if (!(dropout >= 0 && dropout < 1)) throw new AdapterError(`${where}: dropout must be in [0, 1), found ${dropout}`);
}

/** Checks that A is (rank, in) and B is (out, rank) for the base weight (out, in). */
export function checkFactors(where: string, out: number, inDim: number, a: { shape: readonly number[] }, b: { shape: readonly number[] }, rank: number): void {
  const want = (s: readonly number[], e: readonly number[]): boolean => s.length === e.length && s.every((d, i) => d === e[i]);
  if (!want(a.shape, [rank, inDim])) throw new AdapterError(`${where}: loraA must be [${rank},${inDim}] (rank, in), found [${a.shape.join(",")}]`);
  if (!want(b.shape, [out, rank])) throw new AdapterError(`${where}: loraB must be [${out},${rank}] (out, rank), found [${b.shape.join(",")}]`);
}

/**
 * The adapter's input: `x` with dropout at `opts.dropout` when a key is given. A nonzero rate
 * without a key is an error unless the call says `deterministic` (evaluation), so a training
 * step cannot lose its dropout by forgetting the key.
 */
export function adapterInput<S extends readonly (number | string)[], D extends FloatDType>(
  where: string,
  x: Tensor<S, D>,
  opts: AdapterOptions,
  run: ApplyOptions,
): Tensor<S, D> {
  const rate = opts.dropout ?? 0;
  if (rate === 0 || run.deterministic) return x;
  if (!run.key) throw new AdapterError(`${where}: dropout ${rate} needs a key ({ key }) when training, or { deterministic: true } to evaluate without it`);
  return dropoutOp(run.key, x, rate);
}
