// Bad model folders: each is refused before anything reaches the GPU, with a message naming
// the file, the tensor and what was expected.
import { readFile, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadHostModel, ModelError } from "../src/index.js";
import { gpt2Config, llamaConfig, randomGpt2Weights, randomLlamaWeights, shardFileName, writeHfFolder, type Weights } from "./support/hf-checkpoint.js";
import { useTempDirs } from "./support/temp.js";

const tempDir = useTempDirs();

async function llamaFolder(opts: { shards?: number; config?: Record<string, unknown>; edit?: (w: Weights) => void } = {}): Promise<string> {
  const dir = await tempDir();
  const config = opts.config ?? llamaConfig();
  const weights = randomLlamaWeights(llamaConfig(), { seed: 3, dtype: "F32" });
  opts.edit?.(weights);
  await writeHfFolder(dir, config, weights, { dtype: "F32", ...(opts.shards ? { shards: opts.shards } : {}) });
  return dir;
}

const refused = async (dir: string, pattern: RegExp) => {
  const error = await loadHostModel(dir).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  expect((error as Error).message).toMatch(pattern);
  return error as Error;
};

describe("a bad model folder is refused by name", () => {
  it("a missing shard names the shard and the index", async () => {
    const dir = await llamaFolder({ shards: 2 });
    await unlink(join(dir, shardFileName(2, 2)));
    const e = await refused(dir, /model\.safetensors\.index\.json: shard "model-00002-of-00002\.safetensors" \(holding .+\) is missing/);
    expect(e).toBeInstanceOf(ModelError);
  });

  it("a truncated file names the file and the byte where it ended", async () => {
    const dir = await llamaFolder();
    const file = join(dir, "model.safetensors");
    const size = (await readFile(file)).byteLength;
    await truncate(file, size - 100);
    await refused(dir, /model\.safetensors.*(truncated|past the end|ends)/);
  });

  it("a tensor of the wrong shape names it, the file and the shape config.json implies", async () => {
    const dir = await llamaFolder({ edit: (w) => w.set("model.layers.1.mlp.up_proj.weight", { shape: [57, 32], data: new Float64Array(57 * 32) }) });
    await refused(dir, /model\.safetensors: tensor "model\.layers\.1\.mlp\.up_proj\.weight" has shape \[57, 32\], expected \[56, 32\] from config\.json/);
  });

  it("a missing tensor is named with its expected shape", async () => {
    const dir = await llamaFolder({ edit: (w) => w.delete("model.layers.0.self_attn.k_proj.weight") });
    await refused(dir, /missing tensor "model\.layers\.0\.self_attn\.k_proj\.weight" \[16, 32\]/);
  });

  it("an extra tensor is named with the file", async () => {
    const dir = await llamaFolder({ edit: (w) => w.set("model.layers.0.self_attn.extra.weight", { shape: [2], data: new Float64Array(2) }) });
    await refused(dir, /model\.safetensors: unexpected tensor "model\.layers\.0\.self_attn\.extra\.weight"/);
  });

  it("an unknown model_type names the supported ones", async () => {
    const dir = await llamaFolder({ config: { ...llamaConfig(), model_type: "bert" } });
    await refused(dir, /config\.json: model_type "bert" is not supported \(supported: llama, mistral, qwen2, gpt2\)/);
  });

  it("a config.json field of the wrong kind names the field", async () => {
    const dir = await llamaFolder({ config: { ...llamaConfig(), num_key_value_heads: 3 } });
    await refused(dir, /config\.json: num_attention_heads by num_key_value_heads: 4 is not divisible by 3/);
  });

  it("no config.json, invalid JSON, and no weights are each said so", async () => {
    const dir = await llamaFolder();
    await writeFile(join(dir, "config.json"), "{ not json");
    await refused(dir, /config\.json: not valid JSON/);
    await unlink(join(dir, "config.json"));
    await refused(dir, /no config\.json/);
    await writeFile(join(dir, "config.json"), JSON.stringify(gpt2Config()));
    await unlink(join(dir, "model.safetensors"));
    await refused(dir, /no model\.safetensors or model\.safetensors\.index\.json/);
    await refused(join(dir, "nope"), /no such folder/);
  });

  it("GPT-2 weights under a Llama config are refused, not half-loaded", async () => {
    const dir = await tempDir();
    await writeHfFolder(dir, llamaConfig(), randomGpt2Weights(gpt2Config(), { seed: 1, dtype: "F32" }), { dtype: "F32" });
    await refused(dir, /unexpected tensor "transformer\./);
  });
});
