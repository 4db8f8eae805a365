// The small DoRA model the training tests share: a two-layer MLP classifier whose projections
// both carry DoRA adapters (dropout on the adapter input, keys folded from the step), a fixed
// dataset drawn from a random teacher network so the loss can go down, and the helpers to
// run the same step in the float32 interpreter.
import { adamw, adapt, adapterMask, applyLinear, crossEntropy, evaluate, gelu, HostTensor, nn, randomKey, spec, splitKey, type Mask, type Tensor, type TensorSpec } from "@dorafuse/core";
import type { StepContext } from "@dorafuse/compiler";
import type { Rng } from "../../../core/test/support/random.js";

export const IN = 8;
export const HIDDEN = 16;
export const CLASSES = 4;
export const BATCH = 8;

export interface ModelSetup {
  params: unknown;
  trainable: Mask;
  cfg: { kind: "dora"; targets: string[]; rank: number; alpha: number; dropout: number };
  loss: (p: unknown, b: unknown, ctx: StepContext) => { loss: Tensor<[], "f32">; metrics: { accuracy: Tensor<[], "f32"> } };
  batchSpec: { x: TensorSpec; y: TensorSpec };
  /** Batches of the fixed dataset, as host tensors. */
  batches: { x: HostTensor; y: HostTensor }[];
}

type F = Tensor<number[], "f32">;

/** Every f32 leaf rounded to float32, so the interpreter starts where the GPU does. */
export function roundTree(tree: unknown): unknown {
  if (tree instanceof HostTensor) return tree.dtype === "f32" ? new HostTensor(tree.shape, tree.data.map(Math.fround), tree.dtype) : tree;
  if (Array.isArray(tree)) return tree.map(roundTree);
  if (tree && typeof tree === "object") return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, roundTree(v)]));
  return tree;
}

export function doraMlp(rng: Rng, options: { dropout?: number; batches?: number; batch?: number } = {}): ModelSetup {
  const batch = options.batch ?? BATCH;
  const cfg = { kind: "dora" as const, targets: ["l1", "l2"], rank: 2, alpha: 4, dropout: options.dropout ?? 0.1 };
  const base = evaluate((k) => ({ l1: nn.linear.init(k, { inDim: IN, outDim: HIDDEN }), l2: nn.linear.init(k, { inDim: HIDDEN, outDim: CLASSES }) }), [randomKey(rng.int(0, 1e6))]);
  const adapted = evaluate((k: never, p: never) => adapt(k, p, cfg).params, [randomKey(rng.int(0, 1e6)), base] as never);
  const params = roundTree(adapted);
  const trainable = adapterMask(params);
  const loss = (p: unknown, b: unknown, ctx: StepContext) => {
    const { l1, l2 } = p as { l1: never; l2: never };
    const { x, y } = b as { x: F; y: Tensor<number[], "i32"> };
    const [k1, k2] = splitKey(ctx.key, 2);
    const h = gelu(applyLinear(l1, x, cfg, ctx.training ? { key: k1 } : { deterministic: true }) as F);
    const logits = applyLinear(l2, h, cfg, ctx.training ? { key: k2 } : { deterministic: true }) as F;
    const accuracy = logits.argmax(-1).eq(y as never).cast("f32").mean();
    return { loss: crossEntropy(logits as never, y as never) as Tensor<[], "f32">, metrics: { accuracy: accuracy as Tensor<[], "f32"> } };
  };
  // labels from a random teacher, so there is something to learn
  const teacher = Array.from({ length: IN * CLASSES }, () => rng.normal());
  const batches = Array.from({ length: options.batches ?? 4 }, () => {
    const xs = Array.from({ length: batch * IN }, () => Math.fround(rng.normal()));
    const ys = Array.from({ length: batch }, (_, i) => {
      const scores = Array.from({ length: CLASSES }, (_, c) => xs.slice(i * IN, i * IN + IN).reduce((s, v, j) => s + v * teacher[j * CLASSES + c]!, 0));
      return scores.indexOf(Math.max(...scores));
    });
    return { x: new HostTensor([batch, IN], Float64Array.from(xs), "f32"), y: new HostTensor([batch], Float64Array.from(ys), "i32") };
  });
  return { params, trainable, cfg, loss: loss as ModelSetup["loss"], batchSpec: { x: spec([batch, IN]), y: spec([batch], "i32") }, batches };
}

export const optimizerFor = (trainable: Mask) => adamw({ lr: 2e-2, weightDecay: 0.01, clipNorm: 1, mask: trainable });
