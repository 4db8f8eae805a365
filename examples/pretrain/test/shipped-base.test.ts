// The base the project ships (models/sotu-llama) is what its model card says: it loads as a
// Hugging Face folder, and its loss on the fixed held-out slice of State of the Union text,
// scored again here on the GPU from the f16 file, is the card's `validation_slice_loss`.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { evalStep } from "@dorafuse/compiler";
import { createDevice } from "@dorafuse/runtime";
import { languageModelLoss, lmBatchSpec, loadHostModel, uploadTables } from "@dorafuse/models";
import { heldOutTokens, SLICE, sliceBatches } from "../split.js";

const dir = fileURLToPath(new URL("../../../models/sotu-llama", import.meta.url));

describe("the shipped base, models/sotu-llama", () => {
  it("loads, and scores its model card's validation loss on the fixed held-out slice (within 1e-3)", async () => {
    const card = await readFile(`${dir}/README.md`, "utf8");
    const figures = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(card)![1]!) as { validation_slice_loss: number; validation_bits_per_byte: number };
    expect(figures.validation_bits_per_byte).toBeLessThanOrEqual(2.8);
    const model = await loadHostModel(dir);
    expect(model.weights.fileDType).toBe("F16");
    expect(model.family.modelTypes).toContain("llama");
    const device = await createDevice();
    try {
      const loss = languageModelLoss(model.family, model.config);
      const evaluator = await evalStep(loss as never, { params: model.params, batch: lmBatchSpec(model.family, model.config, SLICE.batch, SLICE.seq), device });
      const tables = uploadTables(device, model.family, model.config, SLICE.seq);
      const batches = sliceBatches(heldOutTokens(model.tokenizer!));
      expect(batches).toHaveLength(SLICE.maxBatches);
      let sum = 0;
      for (const b of batches) sum += await (await evaluator.evaluate({ ...b, ...tables } as never)).loss;
      expect(Math.abs(sum / batches.length - figures.validation_slice_loss)).toBeLessThan(1e-3);
      evaluator.dispose();
    } finally {
      device.dispose();
    }
  });
});
