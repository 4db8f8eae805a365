import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CheckpointError,
  exportMergedModel,
  exportPeftAdapter,
  importPeftAdapter,
  readSafetensors,
  SAFETENSORS_DTYPES,
  type HostTensor,
  type SafetensorsDType,
} from "@dorafuse/runtime";
import { seededRandom, type SeededRandom } from "./random.js";

const folders: string[] = [];
afterAll(() => folders.forEach((f) => rmSync(f, { recursive: true, force: true })));

function freshFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "dorafuse-peft-"));
  folders.push(folder);
  return folder;
}

const bitsOf = (data: ArrayBufferView) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** A tensor of random bits (any float bit pattern, NaNs included) of `dtype`. */
function randomTensor(rng: SeededRandom, dtype: SafetensorsDType, shape: number[]): HostTensor {
  const spec = SAFETENSORS_DTYPES[dtype];
  const bytes = rng.bytes(shape.reduce((a, b) => a * b, 1) * spec.bytes);
  return { dtype, shape, data: new spec.array(bytes.buffer) as HostTensor["data"] };
}

/**
 * The bytes of a safetensors file, laid out by hand as the format describes (8-byte length,
 * header JSON, data in the listed order): independent of the runtime's own writer.
 */
function safetensorsBytes(tensors: [string, HostTensor][], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [key, t] of tensors) {
    header[key] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.byteLength));
  return Buffer.concat([length, json, ...tensors.map(([, t]) => bitsOf(t.data))]);
}

/** The header of a safetensors file, parsed by hand. */
function headerOf(path: string): Record<string, { dtype: string; shape: number[]; data_offsets: number[] } | Record<string, string>> {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + length).toString("utf8"));
}

/** adapter_config.json as PEFT 0.19.1's LoraConfig.save_pretrained writes it (every field it serializes). */
function peftConfig(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: "gpt2",
    bias: "none",
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 16,
    lora_bias: false,
    lora_dropout: 0.05,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    peft_version: "0.19.1",
    qalora_group_size: 16,
    r: 4,
    rank_pattern: {},
    revision: null,
    target_modules: ["q", "v"],
    target_parameters: null,
    task_type: "CAUSAL_LM",
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
    ...fields,
  };
}

function writeAdapterFolder(config: unknown, tensors: [string, HostTensor][]): { dir: string; weights: string; configPath: string } {
  const dir = join(freshFolder(), "adapter");
  mkdirSync(dir);
  const configPath = join(dir, "adapter_config.json");
  writeFileSync(configPath, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  const weights = join(dir, "adapter_model.safetensors");
  writeFileSync(weights, safetensorsBytes(tensors, { format: "pt" }));
  return { dir, weights, configPath };
}

const P = "base_model.model.";

describe("importing a PEFT adapter written in PEFT's layout", () => {
  it("reads DoRA linear and embedding layers, rank and alpha patterns, and rsLoRA scales", async () => {
    const rng = seededRandom();
    const files: [string, HostTensor][] = [
      [`${P}blocks.0.attn.q.lora_A.weight`, randomTensor(rng, "F32", [4, 6])],
      [`${P}blocks.0.attn.q.lora_B.weight`, randomTensor(rng, "F32", [5, 4])],
      [`${P}blocks.0.attn.q.lora_magnitude_vector`, randomTensor(rng, "F32", [5])],
      [`${P}blocks.0.attn.v.lora_A.weight`, randomTensor(rng, "BF16", [2, 6])],
      [`${P}blocks.0.attn.v.lora_B.weight`, randomTensor(rng, "BF16", [5, 2])],
      [`${P}blocks.0.attn.v.lora_magnitude_vector`, randomTensor(rng, "F16", [5])],
      [`${P}tokens.lora_embedding_A`, randomTensor(rng, "F32", [4, 10])],
      [`${P}tokens.lora_embedding_B`, randomTensor(rng, "F32", [6, 4])],
      [`${P}tokens.lora_magnitude_vector`, randomTensor(rng, "F32", [6])],
    ];
    const config = peftConfig({ use_dora: true, use_rslora: true, r: 4, lora_alpha: 8, rank_pattern: { v: 2 }, alpha_pattern: { "attn.v": 3 }, target_modules: ["q", "v", "tokens"] });
    const { dir } = writeAdapterFolder(config, files);
    const adapter = await importPeftAdapter(dir);

    const names = ["blocks.0.attn.q.loraA", "blocks.0.attn.q.loraB", "blocks.0.attn.q.m", "blocks.0.attn.v.loraA", "blocks.0.attn.v.loraB", "blocks.0.attn.v.m", "tokens.loraA", "tokens.loraB", "tokens.m"];
    expect(Object.keys(adapter.tensors).sort()).toEqual([...names].sort());
    names.forEach((name, i) => {
      const [, t] = files[i]!;
      const got = adapter.tensors[name]!;
      expect([got.dtype, got.shape], name).toEqual([t.dtype, t.shape]);
      expect(bitsOf(got.data).equals(bitsOf(t.data)), `${name}, ${rng.label}`).toBe(true);
    });
    expect(adapter.layers).toEqual([
      { path: "blocks.0.attn.q", kind: "linear", rank: 4, alpha: 8, scale: 8 / Math.sqrt(4), dora: true },
      { path: "blocks.0.attn.v", kind: "linear", rank: 2, alpha: 3, scale: 3 / Math.sqrt(2), dora: true },
      { path: "tokens", kind: "embedding", rank: 4, alpha: 8, scale: 8 / Math.sqrt(4), dora: true },
    ]);
    // Every field of the file is kept, including those dorafuse does not use.
    expect(adapter.config).toEqual(config);
    expect(adapter.metadata).toEqual({ format: "pt" });
  });

  it("fills LoraConfig's defaults for fields an older PEFT did not write", async () => {
    const rng = seededRandom();
    const { dir } = writeAdapterFolder({ peft_type: "LORA", r: 2, lora_alpha: 4, target_modules: ["q"] }, [
      [`${P}q.lora_A.weight`, randomTensor(rng, "F32", [2, 3])],
      [`${P}q.lora_B.weight`, randomTensor(rng, "F32", [3, 2])],
    ]);
    const adapter = await importPeftAdapter(dir);
    expect(adapter.config).toMatchObject({ use_dora: false, use_rslora: false, bias: "none", lora_dropout: 0, fan_in_fan_out: false, rank_pattern: {}, alpha_pattern: {} });
    expect(adapter.layers).toEqual([{ path: "q", kind: "linear", rank: 2, alpha: 4, scale: 2, dora: false }]);
  });
});

describe("exporting a PEFT adapter", () => {
  it("writes PEFT's key names and config fields, and reads back bit for bit (DoRA)", async () => {
    const rng = seededRandom();
    const tensors: Record<string, HostTensor> = {
      "blocks.0.attn.q.loraA": randomTensor(rng, "F32", [4, 8]),
      "blocks.0.attn.q.loraB": randomTensor(rng, "F32", [8, 4]),
      "blocks.0.attn.q.m": randomTensor(rng, "F32", [8]),
      "blocks.1.mlp.up.loraA": randomTensor(rng, "F32", [4, 8]),
      "blocks.1.mlp.up.loraB": randomTensor(rng, "F32", [16, 4]),
      "blocks.1.mlp.up.m": randomTensor(rng, "F32", [16]),
      "tokens.loraA": randomTensor(rng, "F32", [4, 11]),
      "tokens.loraB": randomTensor(rng, "F32", [8, 4]),
      "tokens.m": randomTensor(rng, "F32", [8]),
    };
    const dir = join(freshFolder(), "out", "adapter");
    const result = await exportPeftAdapter(dir, {
      tensors,
      config: { lora_alpha: 16, lora_dropout: 0.05, task_type: "CAUSAL_LM", base_model_name_or_path: "dorafuse/sotu-base", target_modules: undefined },
      embeddings: ["tokens"],
    });
    expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);

    const header = headerOf(join(dir, "adapter_model.safetensors"));
    const keys = {
      "blocks.0.attn.q.loraA": `${P}blocks.0.attn.q.lora_A.weight`,
      "blocks.0.attn.q.loraB": `${P}blocks.0.attn.q.lora_B.weight`,
      "blocks.0.attn.q.m": `${P}blocks.0.attn.q.lora_magnitude_vector`,
      "blocks.1.mlp.up.loraA": `${P}blocks.1.mlp.up.lora_A.weight`,
      "blocks.1.mlp.up.loraB": `${P}blocks.1.mlp.up.lora_B.weight`,
      "blocks.1.mlp.up.m": `${P}blocks.1.mlp.up.lora_magnitude_vector`,
      "tokens.loraA": `${P}tokens.lora_embedding_A`,
      "tokens.loraB": `${P}tokens.lora_embedding_B`,
      "tokens.m": `${P}tokens.lora_magnitude_vector`,
    };
    expect(result.keys).toEqual(keys);
    expect(Object.keys(header).sort()).toEqual(["__metadata__", ...Object.values(keys)].sort());
    expect(header.__metadata__).toEqual({ format: "pt" });
    for (const [name, key] of Object.entries(keys)) expect(header[key], key).toMatchObject({ dtype: "F32", shape: tensors[name]!.shape });

    const text = readFileSync(join(dir, "adapter_config.json"), "utf8");
    const written = JSON.parse(text);
    expect(Object.keys(written)).toEqual(Object.keys(written).sort());
    expect(text.startsWith('{\n  "alpha_pattern": {},\n  "auto_mapping": null,\n')).toBe(true);
    expect(written).toEqual({
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      inference_mode: true,
      base_model_name_or_path: "dorafuse/sotu-base",
      revision: null,
      r: 4,
      lora_alpha: 16,
      use_dora: true,
      use_rslora: false,
      target_modules: ["q", "tokens", "up"],
      lora_dropout: 0.05,
      bias: "none",
      fan_in_fan_out: false,
      modules_to_save: null,
      init_lora_weights: true,
      layers_to_transform: null,
      layers_pattern: null,
      rank_pattern: {},
      alpha_pattern: {},
      megatron_config: null,
      megatron_core: "megatron.core",
      loftq_config: {},
      layer_replication: null,
      auto_mapping: null,
    });
    expect(result.config).toEqual(written);

    const back = await importPeftAdapter(dir);
    expect(back.config).toEqual(written);
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      expect([back.tensors[name]!.dtype, back.tensors[name]!.shape], name).toEqual([t.dtype, t.shape]);
      expect(bitsOf(back.tensors[name]!.data).equals(bitsOf(t.data)), `${name}, ${rng.label}`).toBe(true);
    }
    expect(back.layers.map((l) => [l.path, l.kind, l.rank, l.scale, l.dora])).toEqual([
      ["blocks.0.attn.q", "linear", 4, 4, true],
      ["blocks.1.mlp.up", "linear", 4, 4, true],
      ["tokens", "embedding", 4, 4, true],
    ]);
  });

  it("writes a LoRA adapter (no magnitudes) with biases, per-layer ranks and a regex target, and reads it back", async () => {
    const rng = seededRandom();
    const tensors: Record<string, HostTensor> = {
      "attn.q.loraA": randomTensor(rng, "F32", [8, 6]),
      "attn.q.loraB": randomTensor(rng, "F32", [6, 8]),
      "attn.q.b": randomTensor(rng, "F32", [6]),
      "attn.v.loraA": randomTensor(rng, "F16", [2, 6]),
      "attn.v.loraB": randomTensor(rng, "F16", [6, 2]),
    };
    const dir = join(freshFolder(), "lora");
    const { config, keys } = await exportPeftAdapter(dir, { tensors, config: { r: 8, lora_alpha: 8, use_rslora: true, bias: "all", rank_pattern: { v: 2 }, target_modules: ".*\\.(q|v)" } });
    expect(config).toMatchObject({ use_dora: false, r: 8, bias: "all", target_modules: ".*\\.(q|v)" });
    expect(keys["attn.q.b"]).toBe(`${P}attn.q.base_layer.bias`);
    const header = headerOf(join(dir, "adapter_model.safetensors"));
    expect(Object.keys(header).filter((k) => k.includes("magnitude"))).toEqual([]);
    const back = await importPeftAdapter(dir);
    for (const [name, t] of Object.entries(tensors)) expect(bitsOf(back.tensors[name]!.data).equals(bitsOf(t.data)), `${name}, ${rng.label}`).toBe(true);
    expect(back.layers.map((l) => [l.path, l.rank, l.scale])).toEqual([
      ["attn.q", 8, 8 / Math.sqrt(8)],
      ["attn.v", 2, 8 / Math.sqrt(2)],
    ]);
  });

  it("refuses tensors it cannot name or that PEFT could not load, listing each, and writes nothing", async () => {
    const rng = seededRandom();
    const dir = join(freshFolder(), "never");
    const tensors = {
      "blocks.0.attn.q.A": randomTensor(rng, "F32", [4, 6]),
      "blocks.0.attn.q.loraB": randomTensor(rng, "F32", [5, 4]),
      "blocks.0.attn.k.loraA": randomTensor(rng, "F32", [2, 6]),
      "blocks.0.attn.k.loraB": randomTensor(rng, "F32", [5, 2]),
      "blocks.0.attn.k.m": randomTensor(rng, "F32", [6]),
      "blocks.0.attn.v.loraA": randomTensor(rng, "I32", [4, 6]),
      "blocks.0.attn.v.loraB": randomTensor(rng, "F32", [5, 4]),
    };
    const error = await exportPeftAdapter(dir, { tensors, config: { lora_alpha: 8, r: 4, use_dora: true, target_modules: ["q", "v"] }, embeddings: ["lm_head"] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      [
        `exporting a PEFT adapter to ${dir}: not a valid PEFT LoRA adapter (10 problems):`,
        `  "blocks.0.attn.q.A": not an adapter tensor (expected <layer>.loraA, .loraB, .m or .b)`,
        `  embeddings lists "lm_head", which has no adapter tensors`,
        `  "blocks.0.attn.v.loraA": expected a floating dtype (F32, F16, BF16, F64), found I32`,
        `  "blocks.0.attn.k.loraA": expected [4, in] for rank 4 (r), found F32[2,6]`,
        `  "blocks.0.attn.k.loraB": expected [out, 4] for rank 4 (r), found F32[5,2]`,
        `  "blocks.0.attn.k.m": expected [5] (one magnitude per output row of lora_B), found F32[6]`,
        `  layer "blocks.0.attn.k": not matched by target_modules ["q","v"], so PEFT would not load it`,
        `  "blocks.0.attn.q.loraA": missing; "blocks.0.attn.q.loraB" has no partner`,
        `  "blocks.0.attn.q.m": missing; use_dora is true, so every layer needs its magnitude vector`,
        `  "blocks.0.attn.v.m": missing; use_dora is true, so every layer needs its magnitude vector`,
      ].join("\n"),
    );
    expect(existsSync(dir)).toBe(false);
    await expect(exportPeftAdapter(dir, { tensors: {}, config: { lora_alpha: 1, modules_to_save: ["lm_head"], lora_bias: true } })).rejects.toThrow(
      [
        `exporting a PEFT adapter to ${dir}: the config: not a LoRA config dorafuse can use (2 problems):`,
        `  "lora_bias": expected false (a bias on lora_B has no dorafuse counterpart), found true`,
        `  "modules_to_save": expected null (modules saved in full are not part of a dorafuse adapter: export them in the merged model), found ["lm_head"]`,
      ].join("\n"),
    );
    expect(existsSync(dir)).toBe(false);
  });
});

describe("importing a malformed PEFT adapter", () => {
  it("lists every problem, naming the file and each key", async () => {
    const rng = seededRandom();
    const { dir, weights, configPath } = writeAdapterFolder(peftConfig({ use_dora: false, r: 4, bias: "none", target_modules: ["q", "v", "k", "o", "tokens"] }), [
      [`${P}blocks.0.attn.q.lora_A.weight`, randomTensor(rng, "F32", [4, 6])],
      [`${P}blocks.0.attn.q.lora_C.weight`, randomTensor(rng, "F32", [4, 6])],
      [`blocks.0.attn.q.lora_B.weight`, randomTensor(rng, "F32", [5, 4])],
      [`${P}blocks.0.attn.v.lora_A.weight`, randomTensor(rng, "F32", [8, 6])],
      [`${P}blocks.0.attn.v.lora_B.weight`, randomTensor(rng, "F32", [5, 8])],
      [`${P}blocks.0.attn.v.lora_magnitude_vector`, randomTensor(rng, "F32", [5])],
      [`${P}blocks.0.attn.k.lora_A.weight`, randomTensor(rng, "F32", [4, 6])],
      [`${P}blocks.0.attn.k.lora_B.weight`, randomTensor(rng, "F32", [5, 4])],
      [`${P}blocks.0.attn.k.base_layer.bias`, randomTensor(rng, "F32", [5])],
      [`${P}blocks.0.attn.o.lora_A.weight`, randomTensor(rng, "F32", [4, 6])],
      [`${P}blocks.0.attn.o.lora_embedding_B`, randomTensor(rng, "F32", [5, 4])],
      [`${P}blocks.0.mlp.up.lora_A.weight`, randomTensor(rng, "F32", [4, 6])],
      [`${P}blocks.0.mlp.up.lora_B.weight`, randomTensor(rng, "F32", [5, 4])],
    ]);
    const error = await importPeftAdapter(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    const expected = "(expected base_model.model.<module>.lora_A.weight, .lora_B.weight, .lora_embedding_A, .lora_embedding_B, .lora_magnitude_vector or .base_layer.bias)";
    expect((error as Error).message).toBe(
      [
        `${weights} (with ${configPath}): not a valid PEFT LoRA adapter (9 problems):`,
        `  "${P}blocks.0.attn.q.lora_C.weight": not a key of a PEFT LoRA adapter ${expected}`,
        `  "blocks.0.attn.q.lora_B.weight": not a key of a PEFT LoRA adapter ${expected}`,
        `  "${P}blocks.0.attn.k.base_layer.bias": a bias, but bias is "none"`,
        `  layer "blocks.0.attn.o": mixes linear (lora_A/lora_B) and embedding (lora_embedding_A/B) names: "${P}blocks.0.attn.o.lora_A.weight", "${P}blocks.0.attn.o.lora_embedding_B"`,
        `  "${P}blocks.0.attn.q.lora_B.weight": missing; "${P}blocks.0.attn.q.lora_A.weight" has no partner`,
        `  "${P}blocks.0.attn.v.lora_A.weight": expected [4, in] for rank 4 (r), found F32[8,6]`,
        `  "${P}blocks.0.attn.v.lora_B.weight": expected [out, 4] for rank 4 (r), found F32[5,8]`,
        `  "${P}blocks.0.attn.v.lora_magnitude_vector": a DoRA magnitude vector, but use_dora is false`,
        `  layer "blocks.0.mlp.up": not matched by target_modules ["q","v","k","o","tokens"], so PEFT would not load it`,
      ].join("\n"),
    );
  });

  it("names the magnitude a DoRA layer lacks, and a magnitude of the wrong shape", async () => {
    const rng = seededRandom();
    const { dir, weights } = writeAdapterFolder(peftConfig({ use_dora: true, r: 2 }), [
      [`${P}q.lora_A.weight`, randomTensor(rng, "F32", [2, 6])],
      [`${P}q.lora_B.weight`, randomTensor(rng, "F32", [5, 2])],
      [`${P}v.lora_A.weight`, randomTensor(rng, "F32", [2, 6])],
      [`${P}v.lora_B.weight`, randomTensor(rng, "F32", [5, 2])],
      [`${P}v.lora_magnitude_vector`, randomTensor(rng, "F32", [5, 1])],
    ]);
    const message = ((await importPeftAdapter(dir).catch((e: unknown) => e)) as Error).message;
    expect(message.startsWith(`${weights} (with `)).toBe(true);
    expect(message).toContain(`"${P}q.lora_magnitude_vector": missing; use_dora is true, so every layer needs its magnitude vector`);
    expect(message).toContain(`"${P}v.lora_magnitude_vector": expected [5] (one magnitude per output row of lora_B), found F32[5,1]`);
  });

  it("refuses configs it cannot honour, and folders without what PEFT writes", async () => {
    const rng = seededRandom();
    const pair: [string, HostTensor][] = [
      [`${P}q.lora_A.weight`, randomTensor(rng, "F32", [2, 6])],
      [`${P}q.lora_B.weight`, randomTensor(rng, "F32", [5, 2])],
    ];
    const bad = writeAdapterFolder(peftConfig({ peft_type: "IA3", r: "2", lora_bias: true, lora_dropout: 1, target_modules: "(q" }), pair);
    await expect(importPeftAdapter(bad.dir)).rejects.toThrow(
      [
        `${bad.configPath}: not a LoRA config dorafuse can use (4 problems):`,
        `  "peft_type": expected "LORA" (dorafuse reads and writes LoRA and DoRA adapters only), found "IA3"`,
        `  "r": expected a positive integer, found "2"`,
        `  "lora_dropout": expected a number in [0, 1), found 1`,
        `  "lora_bias": expected false (a bias on lora_B has no dorafuse counterpart), found true`,
      ].join("\n"),
    );
    const regex = writeAdapterFolder(peftConfig({ r: 2, target_modules: "(q" }), pair);
    await expect(importPeftAdapter(regex.dir)).rejects.toThrow(new RegExp(`^${regex.configPath}: target_modules "\\(q" is not a regular expression`));
    const notJson = writeAdapterFolder('{"peft_type": "LORA",', pair);
    await expect(importPeftAdapter(notJson.dir)).rejects.toThrow(new RegExp(`^${notJson.configPath}: not valid JSON: `));
    const noConfig = writeAdapterFolder({}, pair);
    rmSync(noConfig.configPath);
    await expect(importPeftAdapter(noConfig.dir)).rejects.toThrow(new RegExp(`^${noConfig.configPath}: cannot read the adapter config: .*ENOENT`));
    const pickle = writeAdapterFolder(peftConfig({ r: 2 }), pair);
    rmSync(pickle.weights);
    writeFileSync(join(pickle.dir, "adapter_model.bin"), "PK");
    await expect(importPeftAdapter(pickle.dir)).rejects.toThrow(`${pickle.weights}: missing; the folder has adapter_model.bin, a PyTorch pickle dorafuse does not read (save with safe_serialization=True)`);
    const truncated = writeAdapterFolder(peftConfig({ r: 2 }), pair);
    writeFileSync(truncated.weights, readFileSync(truncated.weights).subarray(0, 100));
    await expect(importPeftAdapter(truncated.dir)).rejects.toThrow(new RegExp(`^${truncated.weights}: `));
  });
});

describe("exporting a merged model", () => {
  it("writes Hugging Face names with the data bit for bit", async () => {
    const rng = seededRandom();
    const tensors: Record<string, HostTensor> = {
      "blocks.0.attn.q.w": randomTensor(rng, "F32", [8, 8]),
      "blocks.0.attn.q.b": randomTensor(rng, "F32", [8]),
      "blocks.0.ln1.gamma": randomTensor(rng, "F32", [8]),
      "blocks.0.ln1.beta": randomTensor(rng, "F32", [8]),
      "tokens.table": randomTensor(rng, "F16", [11, 8]),
      "head.w": randomTensor(rng, "F32", [11, 8]),
    };
    const path = join(freshFolder(), "model.safetensors");
    const names = await exportMergedModel(path, tensors, { prefix: "model." });
    const expected = {
      "blocks.0.attn.q.w": "model.blocks.0.attn.q.weight",
      "blocks.0.attn.q.b": "model.blocks.0.attn.q.bias",
      "blocks.0.ln1.gamma": "model.blocks.0.ln1.weight",
      "blocks.0.ln1.beta": "model.blocks.0.ln1.bias",
      "tokens.table": "model.tokens.weight",
      "head.w": "model.head.weight",
    };
    expect(names).toEqual(expected);
    const header = headerOf(path);
    expect(Object.keys(header).sort()).toEqual(["__metadata__", ...Object.values(expected)].sort());
    expect(header.__metadata__).toEqual({ format: "pt" });
    const back = await readSafetensors(path);
    for (const [name, file] of Object.entries(expected)) expect(bitsOf(back.tensors.get(file)!.data).equals(bitsOf(tensors[name]!.data)), `${name}, ${rng.label}`).toBe(true);
  });

  it("refuses adapter tensors, unknown leaves and two names for one file key, listing each", async () => {
    const rng = seededRandom();
    const path = join(freshFolder(), "model.safetensors");
    const t = () => randomTensor(rng, "F32", [2]);
    await expect(exportMergedModel(path, { "q.w": t(), "q.loraA": t(), "q.m": t(), "e.table": t(), "e.w": t(), "norm.scale": t() })).rejects.toThrow(
      [
        `${path}: cannot export the merged model (4 problems):`,
        `  "q.loraA": an adapter tensor; merge the adapters into the base weights first`,
        `  "q.m": an adapter tensor; merge the adapters into the base weights first`,
        `  "e.w" and "e.table" would both be written as "e.weight"`,
        `  "norm.scale": no Hugging Face name for the leaf "scale" (known: .w, .b, .table, .gamma, .beta)`,
      ].join("\n"),
    );
    expect(existsSync(path)).toBe(false);
  });
});
