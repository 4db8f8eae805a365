// A trained DoRA adapter leaves in PEFT's layout — key names and config fields as PEFT writes
// them — and comes back exactly, into the files' reader and into a fresh training step; the
// merged model folds each adapter into W as g ⊙ (W + s·B·A), checked against a float64
// computation written here.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { trainStep } from "@dorafuse/compiler";
import { importPeftAdapter, readSafetensors, readSafetensorsHeader, type ShapedArray } from "@dorafuse/runtime";
import { relErr } from "../../core/test/support/numeric.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { doraMlp, optimizerFor } from "./support/train-model.js";

const gpu = useDevice();
const folder = () => mkdtempSync(join(tmpdir(), "dorafuse-peft-"));

describe("PEFT export of a trained adapter", () => {
  it("writes PEFT's keys and config, and reads back the same tensors, here and into a fresh step", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const make = () => trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, adapter: m.cfg, device: gpu.device });
      const train = await make();
      for (let k = 0; k < 5; k++) await train.step(m.batches[k % m.batches.length]!);
      const dir = join(folder(), "adapter");
      const { keys } = await train.exportAdapter(dir, { task_type: "CAUSAL_LM" });
      expect(keys).toEqual({
        "l1.loraA": "base_model.model.l1.lora_A.weight",
        "l1.loraB": "base_model.model.l1.lora_B.weight",
        "l1.m": "base_model.model.l1.lora_magnitude_vector",
        "l2.loraA": "base_model.model.l2.lora_A.weight",
        "l2.loraB": "base_model.model.l2.lora_B.weight",
        "l2.m": "base_model.model.l2.lora_magnitude_vector",
      });
      const header = await readSafetensorsHeader(join(dir, "adapter_model.safetensors"));
      expect(header.entries.map((e) => e.name).sort()).toEqual(Object.values(keys).sort());
      expect(header.metadata).toEqual({ format: "pt" });
      const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
      expect(config).toMatchObject({ peft_type: "LORA", use_dora: true, r: 2, lora_alpha: 4, use_rslora: false, lora_dropout: 0.1, target_modules: ["l1", "l2"], task_type: "CAUSAL_LM", bias: "none" });

      const back = await importPeftAdapter(dir);
      expect(back.layers.map((l) => [l.path, l.rank, l.scale, l.dora])).toEqual([["l1", 2, 2, true], ["l2", 2, 2, true]]);
      for (const [name] of Object.entries(keys)) {
        const trained = (await train.readState(`params.${name}`)) as ShapedArray;
        expect(back.tensors[name]!.shape).toEqual([...trained.shape]);
        expect(Buffer.from(back.tensors[name]!.data.buffer).equals(Buffer.from(trained.data.buffer)), `${name} round trip`).toBe(true);
      }

      const fresh = await make();
      await fresh.importAdapter(dir);
      for (const name of Object.keys(keys)) {
        const [a, b] = [(await fresh.readState(`params.${name}`)) as ShapedArray, (await train.readState(`params.${name}`)) as ShapedArray];
        expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), `${name} imported into a fresh step`).toBe(true);
      }
      fresh.dispose();
      train.dispose();
    }));

  it("exports the merged model: each layer's W' = g ⊙ (W + s·B·A) under Hugging Face names", () =>
    withSeed(async (rng) => {
      const m = doraMlp(rng);
      const train = await trainStep(m.loss, optimizerFor(m.trainable), { params: m.params, batch: m.batchSpec, trainable: m.trainable, adapter: m.cfg, device: gpu.device });
      for (let k = 0; k < 5; k++) await train.step(m.batches[k % m.batches.length]!);
      const path = join(folder(), "merged.safetensors");
      const names = await train.exportMerged(path);
      expect(names).toEqual({ "l1.b": "l1.bias", "l1.w": "l1.weight", "l2.b": "l2.bias", "l2.w": "l2.weight" });
      const file = await readSafetensors(path);
      const s = m.cfg.alpha / m.cfg.rank;
      for (const layer of ["l1", "l2"]) {
        const get = async (leaf: string) => (await train.readState(`params.${layer}.${leaf}`)) as ShapedArray;
        const [w, a, b, mag] = await Promise.all(["w", "loraA", "loraB", "m"].map(get));
        const [out, inDim] = w!.shape as [number, number];
        const want = new Float64Array(out * inDim);
        for (let o = 0; o < out; o++) {
          let norm = 0;
          for (let i = 0; i < inDim; i++) {
            let ba = 0;
            for (let r = 0; r < m.cfg.rank; r++) ba += b!.data[o * m.cfg.rank + r]! * a!.data[r * inDim + i]!;
            want[o * inDim + i] = w!.data[o * inDim + i]! + s * ba;
            norm += want[o * inDim + i]! ** 2;
          }
          for (let i = 0; i < inDim; i++) want[o * inDim + i]! *= mag!.data[o]! / Math.sqrt(norm);
        }
        const got = file.tensors.get(`${layer}.weight`)!;
        expect(got.shape).toEqual([out, inDim]);
        expect(relErr(Float64Array.from(got.data as Float32Array), want), `${layer}.weight`).toBeLessThan(1e-6);
        expect(Array.from(file.tensors.get(`${layer}.bias`)!.data as Float32Array)).toEqual(Array.from((await get("b")).data as Float32Array));
      }
      train.dispose();
    }));
});
