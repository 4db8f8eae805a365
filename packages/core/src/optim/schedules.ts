// Learning-rate schedules as tensor functions of the step counter, so a traced training step
// evaluates them on the device with the rest of the update. Definitions follow optax
// (constant, linear, cosine decay, warm-up + cosine decay); `step` counts the updates
// already made, so the first update uses the schedule's value at 0.
import type { Tensor } from "../tensor/tensor.js";
import { scalar, where } from "../tensor/create.js";
import { OptimizerError } from "./errors.js";

/** A learning rate as a function of the step counter (i32 scalar) → f32 scalar. */
export type Schedule = (step: Tensor<[], "i32">) => Tensor<[], "f32">;

/** A fixed learning rate or a schedule. */
export type LearningRate = number | Schedule;

type F = Tensor<[], "f32">;
const f32 = (step: Tensor<[], "i32">): F => step.cast("f32");

function positive(where: string, name: string, v: number, zeroOk = false): void {
  if (!(Number.isFinite(v) && (zeroOk ? v >= 0 : v > 0))) throw new OptimizerError(`${where}: ${name} must be a ${zeroOk ? "non-negative" : "positive"} number, found ${v}`);
}

/** The learning rate at `step`. */
export function learningRate(lr: LearningRate, step: Tensor<[], "i32">): F {
  return typeof lr === "number" ? scalar(lr) : lr(step);
}

/** Always `value`. */
export function constantSchedule(value: number): Schedule {
  return () => scalar(value);
}

/**
 * From `from` to `to` linearly over `steps` updates starting at `begin` (default 0); `from`
 * before, `to` after. (optax.linear_schedule)
 */
export function linearSchedule(o: { readonly from: number; readonly to: number; readonly steps: number; readonly begin?: number }): Schedule {
  positive("linearSchedule", "steps", o.steps);
  const begin = o.begin ?? 0;
  return (step) => {
    const done = f32(step).sub(begin).maximum(0).minimum(o.steps);
    return done.div(o.steps).mul(o.to - o.from).add(o.from);
  };
}

/** From `from` (default 0) up to `peak` over `warmupSteps`, then `peak`. */
export function linearWarmup(o: { readonly peak: number; readonly warmupSteps: number; readonly from?: number }): Schedule {
  return linearSchedule({ from: o.from ?? 0, to: o.peak, steps: o.warmupSteps });
}

/**
 * `init` · ((1 − alpha) · ½(1 + cos(π · min(step, decaySteps) / decaySteps)) + alpha): a half
 * cosine from `init` down to `alpha · init` over `decaySteps`, then flat. (optax.cosine_decay_schedule)
 */
export function cosineDecay(o: { readonly init: number; readonly decaySteps: number; readonly alpha?: number }): Schedule {
  positive("cosineDecay", "decaySteps", o.decaySteps);
  const alpha = o.alpha ?? 0;
  return (step) => {
    const cos = f32(step).minimum(o.decaySteps).mul(Math.PI / o.decaySteps).cos().add(1).mul(0.5);
    return cos.mul(1 - alpha).add(alpha).mul(o.init);
  };
}

/**
 * Linear warm-up from `from` (default 0) to `peak` over `warmupSteps`, then a half cosine from
 * `peak` to `end` (default 0) reaching it at `decaySteps` (counted from step 0, warm-up
 * included), then `end`. (optax.warmup_cosine_decay_schedule)
 */
export function warmupCosineDecay(o: {
  readonly peak: number;
  readonly warmupSteps: number;
  readonly decaySteps: number;
  readonly from?: number;
  readonly end?: number;
}): Schedule {
  positive("warmupCosineDecay", "warmupSteps", o.warmupSteps, true);
  if (!(o.decaySteps > o.warmupSteps)) throw new OptimizerError(`warmupCosineDecay: decaySteps (${o.decaySteps}) must exceed warmupSteps (${o.warmupSteps})`);
  const end = o.end ?? 0;
  const span = o.decaySteps - o.warmupSteps;
  const warm = o.warmupSteps > 0 ? linearWarmup({ peak: o.peak, warmupSteps: o.warmupSteps, from: o.from ?? 0 }) : undefined;
  return (step) => {
    const t = f32(step);
    const after = t.sub(o.warmupSteps).maximum(0).minimum(span);
    const decayed = after.mul(Math.PI / span).cos().add(1).mul(0.5 * (o.peak - end)).add(end);
    return warm ? (where(t.lt(o.warmupSteps), warm(step), decayed) as F) : decayed;
  };
}
