// Training text as finetune reads it: .jsonl documents packed into one stream with EOS after
// each, and every way a data file can be unusable named with the file (and line).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { finetune, packDocuments, readDocuments, splitTokens, trainingBatch } from "../src/index.js";
import { llamaConfig, randomLlamaWeights, writeHfFolder } from "./support/hf-checkpoint.js";
import { useTempDirs } from "./support/temp.js";

const tempDir = useTempDirs();
const bytes = (t: string) => Array.from(new TextEncoder().encode(t));

describe("training data", () => {
  it("a .jsonl file is its documents' text, packed with EOS after each (blank lines skipped)", async () => {
    const file = join(await tempDir(), "docs.jsonl");
    await writeFile(file, `${JSON.stringify({ text: "Call me Ishmael." })}\n\n${JSON.stringify({ text: "Some years ago", id: 7 })}\n${JSON.stringify({ text: "é" })}\n`);
    const docs = await readDocuments(file);
    expect(docs).toEqual(["Call me Ishmael.", "Some years ago", "é"]);
    const packed = packDocuments(docs, bytes, 2);
    expect(Array.from(packed)).toEqual([...bytes("Call me Ishmael."), 2, ...bytes("Some years ago"), 2, 0xc3, 0xa9, 2]);
    // a .txt file is one document, whatever its lines
    const txt = join(await tempDir(), "one.txt");
    await writeFile(txt, "a\n{not json}\n");
    expect(await readDocuments(txt)).toEqual(["a\n{not json}\n"]);
  });

  it("validation is the stream's tail, and a batch depends on (seed, step) alone", () => {
    const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
    const { train, validation } = splitTokens(tokens, 0.1, "x");
    expect([train.length, validation.length, validation[0]]).toEqual([900, 100, 900]);
    const a = trainingBatch(train, { batch: 3, seq: 16, seed: 1, step: 5 });
    expect(trainingBatch(train, { batch: 3, seq: 16, seed: 1, step: 5 })).toEqual(a);
    expect(trainingBatch(train, { batch: 3, seq: 16, seed: 1, step: 6 }).ids.data).not.toEqual(a.ids.data);
    for (let b = 0; b < 3; b++) for (let s = 0; s < 16; s++) expect(a.targets.data[b * 16 + s]).toBe(a.ids.data[b * 16 + s]! + 1);
  });

  it("unusable data is refused with the file, the line and what is wrong, before anything is compiled", async () => {
    const dir = await tempDir();
    const config = llamaConfig({ vocab_size: 256, max_position_embeddings: 64 });
    await writeHfFolder(dir, config, randomLlamaWeights(config, { seed: 1, dtype: "F32" }), { dtype: "F32" });
    const run = async (name: string, content: string, extra: Record<string, unknown> = {}) => {
      const file = join(dir, name);
      await writeFile(file, content);
      return finetune({ model: dir, data: file, out: await tempDir(), seq: 32, dtype: "f32", ...extra });
    };
    await expect(run("empty.txt", "  \n")).rejects.toThrow(`${join(dir, "empty.txt")}: the file is empty`);
    await expect(run("bad.jsonl", `{"text": "a"}\n{"text": "b"}\n{"text": "c"\n`)).rejects.toThrow(`${join(dir, "bad.jsonl")}:3: not valid JSON`);
    await expect(run("field.jsonl", `{"text": "a"}\n{"body": "b"}\n`)).rejects.toThrow(`${join(dir, "field.jsonl")}:2: expected an object with a "text" string, found {"body": "b"}`);
    await expect(run("short.txt", "Call me Ishmael.")).rejects.toThrow(`${join(dir, "short.txt")}: the training text (the first 90% of it) has 15 tokens, shorter than one sequence of --seq 32 (plus the token after it)`);
    await expect(run("tail.txt", "x".repeat(200))).rejects.toThrow(`the validation text (its last 10%: give a larger --val-fraction or a --val file) has 20 tokens, shorter than one sequence of --seq 32`);
    await expect(run("long.txt", "x".repeat(200), { seq: 128 })).rejects.toThrow(`--seq 128 is longer than ${dir}'s context (64 positions)`);
  });
});
