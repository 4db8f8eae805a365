// The conventions that are easy to get wrong, each pinned against a computation written here:
// rotate_half RoPE (halves, not interleaved pairs), the grouped-query head mapping
// (⌊h / G⌋, not h mod kvHeads), Conv1D's [in, out] storage, tied heads, BF16 widening.
import { describe, expect, it } from "vitest";
import { hostTensor, run, spec, trace, type HostTensor, type Tensor } from "@dorafuse/core";
import { bf16ToF32 } from "@dorafuse/runtime";
import { applyRope, causalAttention, loadHostModel, ropeTables } from "../src/index.js";
import { bf16Bits, gpt2Config, llamaConfig, randomGpt2Weights, randomLlamaWeights, writeHfFolder } from "./support/hf-checkpoint.js";
import { relErr, withSeed, type Rng } from "./support/gpu.js";
import { useTempDirs } from "./support/temp.js";

const tempDir = useTempDirs();

const randoms = (rng: Rng, n: number) => Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
/** Evaluates `fn` on host tensors in the float64 interpreter. */
const evalF64 = (fn: (...xs: never[]) => unknown, xs: HostTensor[]) => (run(trace(fn as never, xs.map((x) => spec(x.shape as number[], x.dtype))), xs as never) as unknown as HostTensor).data;

describe("rotary embeddings", () => {
  it("rotate the two halves of each head (transformers' rotate_half), which differs from interleaved pairs", () =>
    withSeed((rng) => {
      const [heads, steps, dh] = [2, 5, 8];
      const x = hostTensor([1, heads, steps, dh], randoms(rng, heads * steps * dh));
      const { cos, sin } = ropeTables(dh, 16, 10000);
      const pos = hostTensor([steps], [3, 4, 5, 6, 7], "i32");
      const ours = evalF64((a: Tensor, c: Tensor, s: Tensor, p: Tensor) => applyRope(a, p, { cos: c, sin: s }), [x, cos, sin, pos]);
      const half = dh / 2;
      const expected = new Float64Array(x.data.length);
      const interleaved = new Float64Array(x.data.length);
      for (let h = 0; h < heads; h++) {
        for (let t = 0; t < steps; t++) {
          const at = (h * steps + t) * dh;
          const p = pos.data[t]!;
          for (let i = 0; i < half; i++) {
            const angle = p / Math.pow(10000, (2 * i) / dh);
            const [c, s] = [Math.cos(angle), Math.sin(angle)];
            // q·cos + rotate_half(q)·sin with rotate_half(q) = cat(−q₂, q₁) and cos = cat(c, c)
            expected[at + i] = x.data[at + i]! * c - x.data[at + half + i]! * s;
            expected[at + half + i] = x.data[at + half + i]! * c + x.data[at + i]! * s;
            // the paper's convention: pairs (2i, 2i+1)
            interleaved[at + 2 * i] = x.data[at + 2 * i]! * c - x.data[at + 2 * i + 1]! * s;
            interleaved[at + 2 * i + 1] = x.data[at + 2 * i + 1]! * c + x.data[at + 2 * i]! * s;
          }
        }
      }
      expect(relErr(ours, expected)).toBeLessThan(1e-6);
      expect(relErr(ours, interleaved)).toBeGreaterThan(0.1);
    }));
});

describe("grouped-query attention", () => {
  it("query head h reads key/value head ⌊h / (heads / kvHeads)⌋, as repeat_kv", () =>
    withSeed((rng) => {
      const [heads, kvHeads, steps, dh] = [6, 2, 4, 3];
      const q = hostTensor([1, heads, steps, dh], randoms(rng, heads * steps * dh));
      const k = hostTensor([1, kvHeads, steps, dh], randoms(rng, kvHeads * steps * dh));
      const v = hostTensor([1, kvHeads, steps, dh], randoms(rng, kvHeads * steps * dh));
      const ours = evalF64((a: Tensor, b: Tensor, c: Tensor) => causalAttention(a, b, c, { scale: 0.5 }), [q, k, v]);
      const attend = (mapping: (h: number) => number) => {
        const out = new Float64Array(heads * steps * dh);
        for (let h = 0; h < heads; h++) {
          const g = mapping(h);
          for (let t = 0; t < steps; t++) {
            const scores = Array.from({ length: t + 1 }, (_, j) => 0.5 * Array.from({ length: dh }, (_, d) => q.data[(h * steps + t) * dh + d]! * k.data[(g * steps + j) * dh + d]!).reduce((a, b) => a + b));
            const top = Math.max(...scores);
            const e = scores.map((s) => Math.exp(s - top));
            const z = e.reduce((a, b) => a + b);
            for (let d = 0; d < dh; d++) out[(h * steps + t) * dh + d] = e.reduce((acc, w, j) => acc + (w / z) * v.data[(g * steps + j) * dh + d]!, 0);
          }
        }
        return out;
      };
      expect(relErr(ours, attend((h) => Math.floor(h / (heads / kvHeads))))).toBeLessThan(1e-12);
      expect(relErr(ours, attend((h) => h % kvHeads))).toBeGreaterThan(0.01);
    }));
});

describe("checkpoint layouts", () => {
  it("GPT-2's Conv1D weights [in, out] become the tree's [out, in]", () =>
    withSeed(async (rng) => {
      const config = gpt2Config();
      const weights = randomGpt2Weights(config, { seed: rng.int(0, 1 << 30), dtype: "F32" });
      const dir = await tempDir();
      await writeHfFolder(dir, config, weights, { dtype: "F32" });
      const m = await loadHostModel(dir);
      const cAttn = (m.params as { transformer: { h: { attn: { c_attn: { w: HostTensor } } }[] } }).transformer.h[1]!.attn.c_attn.w;
      const file = weights.get("transformer.h.1.attn.c_attn.weight")!;
      const [inDim, outDim] = file.shape as [number, number];
      expect(cAttn.shape).toEqual([outDim, inDim]);
      for (const [o, i] of [[0, 1], [outDim - 1, 3], [17, inDim - 1]] as const) expect(cAttn.data[o * inDim + i]).toBe(Math.fround(file.data[i * outDim + o]!));
    }));

  it("a tied Llama has no lm_head in its tree and skips a copy of it in the file; an untied one loads it", () =>
    withSeed(async (rng) => {
      const tied = llamaConfig({ tie_word_embeddings: true });
      const weights = randomLlamaWeights(tied, { seed: rng.int(0, 1 << 30), dtype: "F32" });
      const embed = weights.get("model.embed_tokens.weight")!;
      const dir = await tempDir();
      await writeHfFolder(dir, tied, new Map([...weights, ["lm_head.weight", embed]]), { dtype: "F32" });
      const m = await loadHostModel(dir);
      expect("lm_head" in (m.params as object)).toBe(false);
      expect(m.weights.skipped).toEqual(["lm_head.weight"]);
      const untied = llamaConfig();
      const dir2 = await tempDir();
      await writeHfFolder(dir2, untied, randomLlamaWeights(untied, { seed: 1, dtype: "F32" }), { dtype: "F32" });
      expect((await loadHostModel(dir2)).params).toHaveProperty("lm_head.w.shape", [untied.vocab_size, untied.hidden_size]);
    }));

  it("BF16 widens exactly to the float32 with the same upper half", () => {
    const values = [1, -2.5, 3.140625, 1e-3, 65280, -0, 2 ** -130];
    const bits = Uint16Array.from(values.map(bf16Bits));
    const wide = bf16ToF32(bits);
    const raw = new Uint32Array(wide.buffer);
    bits.forEach((b, i) => expect(raw[i]).toBe(b * 65536));
    expect(Array.from(wide.subarray(0, 3))).toEqual([1, -2.5, 3.140625]);
  });
});
