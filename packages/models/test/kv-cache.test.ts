// Generation's compiled step against the whole forward: the KV cache holds exactly what the
// forward recomputes, at every position, for prefills of any chunking and for both families;
// greedy decoding is deterministic and sampling with a seed reproducible.
import { describe, expect, it } from "vitest";
import { evaluate, hostTensor, randomKey, run, spec, specsOf, trace, type HostTensor } from "@dorafuse/core";
import { compile } from "@dorafuse/compiler";
import { Generator, gpt2, llama, type BaseConfig, type Family, type LlamaConfig, type Gpt2Config, type LoadedModel } from "../src/index.js";
import { read, relErr, toDevice, useDevice, withSeed } from "./support/gpu.js";

const gpu = useDevice();

const llamaCfg: LlamaConfig = {
  modelType: "llama", vocab: 61, dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, headDim: 8, maxPositions: 24,
  normEps: 1e-5, ropeTheta: 10000, attentionBias: true, outputBias: false, mlpBias: false, activation: "silu", tied: false, initStd: 0.3, eos: [],
};
const gpt2Cfg: Gpt2Config = {
  vocab: 53, dim: 32, layers: 2, heads: 4, kvHeads: 4, headDim: 8, hidden: 64, maxPositions: 24, normEps: 1e-5,
  activation: "gelu_new", scaleByLayer: false, tied: true, initStd: 0.3, eos: [],
};

/** A model made by the family's init, on the GPU, as loadModel would give it. */
function randomModel(family: Family<BaseConfig>, config: BaseConfig, seed: number): { model: LoadedModel; host: unknown } {
  const host = evaluate((k) => family.init(k as never, config), [randomKey(seed)]);
  const weights = { bytes: 0, f32Bytes: 0, skipped: [], files: [], fileDType: "F32" as const };
  return { model: { dir: "(random)", family, config, params: toDevice(host, gpu.device), dtype: "f32", weights }, host };
}

/** The whole forward's logits [S, vocab] on the GPU, and the float64 interpreter's. */
async function forwardLogits(family: Family<BaseConfig>, config: BaseConfig, host: unknown, ids: number[]): Promise<{ gpu: Float64Array; ref: Float64Array }> {
  const buffers = family.buffers(config, config.maxPositions);
  const fwd = (p: unknown, b: Record<string, never>, x: never) => family.forward(p, b, x, config);
  const x = hostTensor([1, ids.length], ids, "i32");
  const f = await compile(fwd as never, [host, buffers, spec([1, ids.length], "i32")], { device: gpu.device });
  const out = await read(await f(host, buffers, x));
  f.dispose();
  const ref = run(trace(fwd as never, [specsOf(host), specsOf(buffers), spec([1, ids.length], "i32")]), [host, buffers, x] as never) as unknown as HostTensor;
  return { gpu: out, ref: ref.data };
}

const families: [string, Family<BaseConfig>, BaseConfig][] = [
  ["llama (GQA, q/k/v biases)", llama as never, llamaCfg],
  ["gpt2", gpt2 as never, gpt2Cfg],
];

describe.each(families)("%s", (_, family, config) => {
  it("the whole forward on the GPU matches the float64 interpreter", () =>
    withSeed(async (rng) => {
      const { host } = randomModel(family, config, rng.int(0, 1000));
      const ids = Array.from({ length: 13 }, () => rng.int(0, config.vocab - 1));
      const { gpu: out, ref } = await forwardLogits(family, config, host, ids);
      expect(relErr(out, ref)).toBeLessThan(1e-4);
    }));

  it("decoding through the KV cache gives the whole forward's logits at every position, for any prefill chunking", () =>
    withSeed(async (rng) => {
      const { model, host } = randomModel(family, config, rng.int(0, 1000));
      const ids = Array.from({ length: 17 }, () => rng.int(0, config.vocab - 1));
      const { gpu: whole } = await forwardLogits(family, config, host, ids);
      const row = (i: number) => whole.subarray(i * config.vocab, (i + 1) * config.vocab);
      // one token at a time
      const gen = await Generator.create(model, gpu.device, { capacity: 20, prefillChunk: 4 });
      for (let i = 0; i < ids.length; i++) {
        const logits = await gen.feed([ids[i]!]);
        expect(relErr(logits, row(i)), `position ${i}`).toBeLessThan(1e-4);
      }
      // a prefill of 10 in chunks of 4, 4 and 2 (padded to 2), then single tokens
      gen.reset();
      expect(relErr(await gen.feed(ids.slice(0, 10)), row(9))).toBeLessThan(1e-4);
      for (let i = 10; i < ids.length; i++) expect(relErr(await gen.feed([ids[i]!]), row(i)), `position ${i}`).toBeLessThan(1e-4);
      // a prefill of 3 padded to 4
      gen.reset();
      expect(relErr(await gen.feed(ids.slice(0, 3)), row(2))).toBeLessThan(1e-4);
      gen.dispose();
    }));

  it("greedy generation is deterministic and follows the argmax of the whole forward", () =>
    withSeed(async (rng) => {
      const { model, host } = randomModel(family, config, rng.int(0, 1000));
      const prompt = Array.from({ length: 5 }, () => rng.int(0, config.vocab - 1));
      const gen = await Generator.create(model, gpu.device, { capacity: 16 });
      const a = await gen.generate(prompt, { maxNewTokens: 8 });
      const b = await gen.generate(prompt, { maxNewTokens: 8 });
      expect(a.ids).toHaveLength(8);
      expect(b.ids).toEqual(a.ids);
      // each new token is the argmax of the whole forward over everything before it
      const { gpu: whole } = await forwardLogits(family, config, host, [...prompt, ...a.ids.slice(0, -1)]);
      a.ids.forEach((id, i) => {
        const r = whole.subarray((prompt.length - 1 + i) * config.vocab, (prompt.length + i) * config.vocab);
        expect(id, `token ${i}`).toBe(r.indexOf(Math.max(...r)));
      });
      gen.dispose();
    }));

  it("sampling with a seed is reproducible, and another seed samples otherwise", () =>
    withSeed(async (rng) => {
      const { model } = randomModel(family, config, rng.int(0, 1000));
      const prompt = [1, 2, 3];
      const gen = await Generator.create(model, gpu.device, { capacity: 24 });
      const opts = { maxNewTokens: 16, temperature: 1.5, topK: 20, topP: 0.95 };
      const a = await gen.generate(prompt, { ...opts, seed: 7 });
      const b = await gen.generate(prompt, { ...opts, seed: 7 });
      const c = await gen.generate(prompt, { ...opts, seed: 8 });
      expect(b.ids).toEqual(a.ids);
      expect(c.ids).not.toEqual(a.ids);
      gen.dispose();
    }));
});
