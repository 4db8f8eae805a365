// saveModel writes what save_pretrained writes: loading a folder and saving it again gives the
// same names, shapes, dtypes and bytes (Conv1D back in [in, out]), a config.json that reads
// back to the same config, and the tokenizer files beside it.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { f32ToBf16, readSafetensors } from "@dorafuse/runtime";
import { loadHostModel, readModelConfig, saveModel } from "../src/index.js";
import { bf16Bits, gpt2Config, llamaConfig, randomGpt2Weights, randomLlamaWeights, writeHfFolder } from "./support/hf-checkpoint.js";
import { useTempDirs } from "./support/temp.js";

const tempDir = useTempDirs();

async function sameTensors(a: string, b: string, rename: (n: string) => string = (n) => n): Promise<void> {
  const [x, y] = [await readSafetensors(a), await readSafetensors(b)];
  expect(y.metadata).toEqual({ format: "pt" });
  expect([...y.tensors.keys()].sort()).toEqual([...x.tensors.keys()].map(rename).sort());
  for (const [name, t] of x.tensors) {
    const u = y.tensors.get(rename(name))!;
    expect([u.dtype, u.shape], name).toEqual([t.dtype, t.shape]);
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(true);
  }
}

describe("saveModel", () => {
  it("a BF16 Llama folder saved again is the same file, config and tokenizer", async () => {
    const config = llamaConfig({ tie_word_embeddings: true, attention_bias: true });
    const src = await tempDir();
    await writeHfFolder(src, config, randomLlamaWeights(config, { seed: 5, dtype: "BF16" }), { dtype: "BF16" });
    const m = await loadHostModel(src);
    await writeFile(join(src, "tokenizer.json"), '{"version": "1.0"}'); // copied as it is, never parsed
    const out = await tempDir();
    const written = await saveModel(join(out, "copy"), m.family, m.config, m.params, { dtype: "BF16", companionsFrom: src });
    expect(written).toEqual(["config.json", "model.safetensors", "tokenizer.json"]);
    await sameTensors(join(src, "model.safetensors"), join(out, "copy", "model.safetensors"));
    expect(readModelConfig(join(out, "copy")).config).toEqual(m.config);
    expect(JSON.parse(await readFile(join(out, "copy", "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
    expect(await readFile(join(out, "copy", "tokenizer.json"), "utf8")).toBe('{"version": "1.0"}');
    expect(existsSync(join(out, "copy", ".tokenizer.json.tmp"))).toBe(false);
  });

  it("a hub GPT-2 file comes back with save_pretrained's transformer. names and its Conv1D weights as [in, out]", async () => {
    const config = gpt2Config();
    const src = await tempDir();
    await writeHfFolder(src, config, randomGpt2Weights(config, { seed: 6, dtype: "F32" }), { dtype: "F32", prefix: false });
    const m = await loadHostModel(src);
    const out = await tempDir();
    await saveModel(out, m.family, m.config, m.params);
    await sameTensors(join(src, "model.safetensors"), join(out, "model.safetensors"), (n) => `transformer.${n}`);
    expect(readModelConfig(out).config).toEqual(m.config);
  });

  it("f32 → bf16 rounds to nearest even, as torch's .to(torch.bfloat16)", () => {
    const values = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -3.3, 1e-40, 65504, -0];
    expect(Array.from(f32ToBf16(Float32Array.from(values)))).toEqual(values.map(bf16Bits));
  });
});
