// The corpora load from their packages in reading order, and the novel written to a file reads
// back through the models package as the one document finetune trains on.
import { describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readDocuments } from "@dorafuse/models";
import { corpusText, loadMobyDick, loadSotu, writeCorpus } from "../src/index.js";

describe("corpora", () => {
  const sotu = loadSotu();
  const moby = loadMobyDick();

  it("load both datasets from their packages, non-empty and in the documented order", () => {
    expect(sotu.documents.length).toBeGreaterThan(200);
    expect(moby.documents.length).toBeGreaterThan(130);
    for (const d of [...sotu.documents, ...moby.documents]) expect(d.text.length).toBeGreaterThan(0);
    const years = sotu.documents.map((d) => Number(d.title.slice(0, 4)));
    expect(years).toEqual([...years].sort((a, b) => a - b));
    expect(sotu.documents[0]!.title).toMatch(/^1790 George Washington/);
    expect(moby.documents.find((d) => d.text.startsWith("Call me Ishmael."))).toBeDefined();
    // the contents page comes first and the epilogue last, as in the book
    expect(moby.documents[0]!.text).toMatch(/^CONTENTS/);
    expect(moby.documents[moby.documents.length - 1]!.title).toMatch(/^Epilogue/);
  });

  it("joins the documents by a blank line, so the held-out tail is the end of the book", () => {
    const text = corpusText(moby);
    expect(text.startsWith(moby.documents[0]!.text)).toBe(true);
    expect(text.endsWith(moby.documents[moby.documents.length - 1]!.text)).toBe(true);
    expect(text.length).toBe(moby.documents.reduce((n, d) => n + d.text.length, 0) + 2 * (moby.documents.length - 1));
  });

  it("writes a .txt that readDocuments gives back whole, as one document", async () => {
    const dir = await mkdtemp(join(tmpdir(), "finetune-data-"));
    try {
      const file = join(dir, "nested", "moby-dick.txt");
      await writeCorpus(moby, file);
      expect(await readDocuments(file)).toEqual([corpusText(moby)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
