// Adapters on the pretrained families, by PEFT's module names: every adapted projection of a
// Llama or GPT-2 tree runs as the fused DoRA kernels (one or two forward, at most two backward
// kernels, nothing of W's size), also over a frozen base stored in f16, and the GPU matches
// the float64 interpreter forward and backward.
import { describe, expect, it } from "vitest";
import { adapt, adapterMask, evaluate, flatten, HostTensor, hostTensor, randomKey, run, spec, specsOf, trace, unflatten, valueAndGrad, crossEntropy, type Tensor } from "@dorafuse/core";
import { compile, doraReport } from "@dorafuse/compiler";
import { gpt2, llama, type BaseConfig, type Family, type Gpt2Config, type LlamaConfig } from "../src/index.js";
import { relErr, useDevice, withSeed } from "./support/gpu.js";
import { roundTo } from "./support/hf-checkpoint.js";

const gpu = useDevice();

const llamaCfg: LlamaConfig = {
  modelType: "llama", vocab: 41, dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, headDim: 8, maxPositions: 16,
  normEps: 1e-5, ropeTheta: 10000, attentionBias: false, outputBias: false, mlpBias: false, activation: "silu", tied: false, initStd: 0.2, eos: [],
};
const gpt2Cfg: Gpt2Config = { vocab: 41, dim: 32, layers: 2, heads: 4, kvHeads: 4, headDim: 8, hidden: 64, maxPositions: 16, normEps: 1e-5, activation: "gelu_new", scaleByLayer: false, tied: true, initStd: 0.2, eos: [] };
const opts = { rank: 4, alpha: 8 };

/** The tree with its matrices stored as f16 (values rounded as the GPU stores them). */
function asF16(tree: unknown): unknown {
  const [leaves, def] = flatten(tree, (v): v is HostTensor => v instanceof HostTensor);
  return unflatten(def, leaves.map((t) => (t.shape.length === 2 ? new HostTensor(t.shape, t.data.map((v) => roundTo("F16", v)), "f16") : t)));
}

/** Adapted params with B and m moved off their initial values, so the adapter changes the output. */
function adapted(family: Family<BaseConfig>, config: BaseConfig, targets: string[], f16: boolean, seed: number): unknown {
  const base = evaluate((k) => family.init(k as never, config), [randomKey(seed)]);
  const p = evaluate((k, b) => adapt(k, b, { kind: "dora", targets, ...opts }).params, [randomKey(seed + 1), f16 ? asF16(base) : base]);
  const [leaves, def] = flatten(p, (v): v is HostTensor => v instanceof HostTensor);
  let i = 0;
  return unflatten(def, leaves.map((t) => (t.shape[1] === opts.rank || (t.shape.length === 1 && t.dtype === "f32") ? new HostTensor(t.shape, t.data.map((v) => v + 0.05 * Math.sin(++i)), t.dtype) : t)));
}

const cases: [string, Family<BaseConfig>, BaseConfig, string[], number][] = [
  ["llama q/k/v/o/gate/up/down", llama as never, llamaCfg, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], 14],
  ["gpt2 c_attn/c_proj/c_fc", gpt2 as never, gpt2Cfg, ["c_attn", "c_proj", "c_fc"], 8],
];

describe.each(cases)("DoRA on %s", (_, family, config, targets, layers) => {
  for (const f16 of [false, true]) {
    it(`${f16 ? "over an f16 base" : "over an f32 base"}: fused kernels only, and the loss and adapter gradients match the interpreter`, () =>
      withSeed(async (rng) => {
        const params = adapted(family, config, targets, f16, rng.int(0, 1000));
        const trainable = adapterMask(params);
        const buffers = family.buffers(config, config.maxPositions);
        const lossOf = (p: unknown, b: Record<string, Tensor>, ids: Tensor, y: Tensor) =>
          crossEntropy(family.forward(p, b, ids as never, config, { adapters: opts, deterministic: true }) as never, y as never);
        const step = (p: unknown, b: Record<string, Tensor>, ids: Tensor, y: Tensor) => (valueAndGrad(lossOf as never, { trainable }) as (...a: unknown[]) => unknown)(p, b, ids, y);
        const ids = hostTensor([2, 6], Array.from({ length: 12 }, () => rng.int(0, config.vocab - 1)), "i32");
        const ys = hostTensor([2, 6], Array.from({ length: 12 }, () => rng.int(0, config.vocab - 1)), "i32");
        const f = await compile(step as never, [params, buffers, spec([2, 6], "i32"), spec([2, 6], "i32")], { device: gpu.device });
        const report = doraReport(f.lowered);
        expect(report).toHaveLength(layers);
        for (const r of report) {
          expect(r.forward.length, r.weight).toBeGreaterThanOrEqual(1);
          expect(r.forward.length, r.weight).toBeLessThanOrEqual(2);
          expect(r.backward.length, r.weight).toBeLessThanOrEqual(2);
          expect(r.weightSized, r.weight).toEqual([]);
        }
        const [loss, grads] = (await f.run(params, buffers, ids, ys)) as [HostTensor, unknown];
        const ref = run(trace(step as never, [specsOf(params), specsOf(buffers), spec([2, 6], "i32"), spec([2, 6], "i32")]), [params, buffers, ids, ys] as never) as unknown as [HostTensor, unknown];
        expect(relErr(loss.data, ref[0].data)).toBeLessThan(1e-5);
        const [g, gRef] = [grads, ref[1]].map((t) => flatten(t, (v): v is HostTensor => v instanceof HostTensor)[0]);
        expect(g!.length).toBe(layers * 3);
        g!.forEach((t, k) => expect(relErr(t.data, gRef![k]!.data), `gradient ${k}`).toBeLessThan(1e-4));
        f.dispose();
      }));
  }
});
