// The BPE trainer: what it writes loads through @huggingface/tokenizers as a byte-level BPE
// tokenizer.json, round-trips any text, learns the most frequent pair first, and is the same
// tokenizer every time for the same corpus.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { byteCharacters, loadTokenizer, trainTokenizer } from "../src/index.js";
import { useTempDirs } from "./support/temp.js";

const tempDir = useTempDirs();
const corpus = [
  "The state of the Union is strong. The people of the United States have spoken.",
  "We the people, in order to form a more perfect union, establish justice.",
  "Fellow citizens: the union of the states, the strength of the people — 1790, 1861, 2021.",
];

async function load(json: Record<string, unknown>, vocab: number) {
  const dir = await tempDir();
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(json));
  return (await loadTokenizer(dir, { vocabSize: vocab }))!;
}

describe("trainTokenizer", () => {
  it("writes a byte-level BPE tokenizer.json that round-trips text it never saw and compresses text it did", async () => {
    const json = trainTokenizer(corpus, { vocabSize: 300 });
    const tok = await load(json, 300);
    expect(tok.vocabSize).toBe(300);
    for (const text of [...corpus, "Ünïcode ✓ 日本語 🚀 and\nnew\tlines  with   spaces", ""]) expect(tok.decode(tok.encode(text))).toBe(text);
    const bytes = new TextEncoder().encode(corpus[0]!).length;
    expect(tok.encode(corpus[0]!).length).toBeLessThan(0.6 * bytes);
    expect(tok.tokenId("<|endoftext|>")).toBe(299);
    expect(tok.encode("the<|endoftext|>the")).toEqual([...tok.encode("the"), 299, ...tok.encode("the")]);
  });

  it("learns the most frequent adjacent pair first (GPT-2's byte characters: Ġ is a space)", () => {
    const json = trainTokenizer(["ab ab ab cd", "ab"], { vocabSize: 260, special: [] }) as { model: { merges: string[]; vocab: Record<string, number> } };
    expect(json.model.merges[0]).toBe("a b");
    expect(json.model.vocab["ab"]).toBe(256);
    expect(byteCharacters()[32]).toBe("Ġ");
    expect(json.model.merges).toContain("Ġ ab");
  });

  it("is deterministic", () => {
    expect(JSON.stringify(trainTokenizer(corpus, { vocabSize: 320 }))).toBe(JSON.stringify(trainTokenizer(corpus, { vocabSize: 320 })));
  });
});
