import { describe, expect, it, afterAll, beforeAll } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode as gptDecode, encode as gptEncode } from "gpt-3-encoder";
import { byteTokenizer, loadTokenizer, TokenizerError, type Tokenizer } from "../src/tokenizer.js";
import { writeGpt2Tokenizer } from "./support/gpt2-tokenizer.js";

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh temp folder holding `files` (name → contents). */
async function folder(files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "dorafuse-tokenizer-"));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function load(files: Record<string, string>): Promise<Tokenizer> {
  const tokenizer = await loadTokenizer(await folder(files), { vocabSize: 50_000 });
  if (tokenizer === undefined) throw new Error("expected a tokenizer");
  return tokenizer;
}

/** Streaming decodes every prefix of the ids: none may throw, each must be a prefix of the text
 * once its trailing U+FFFD (an incomplete UTF-8 sequence) is held back, the last is the text. */
function expectDecodesEveryPrefix(tokenizer: Tokenizer, text: string): void {
  const ids = tokenizer.encode(text);
  let last = "";
  let heldBack = 0;
  for (let n = 0; n <= ids.length; n++) {
    last = tokenizer.decode(ids.slice(0, n));
    const shown = last.replace(/\uFFFD+$/u, "");
    if (shown !== last) heldBack++;
    expect(text.startsWith(shown), `decode of the first ${n} of ${JSON.stringify(ids)}: ${JSON.stringify(last)}`).toBe(true);
  }
  expect(last).toBe(text);
  expect(heldBack, "the text should split a character across tokens somewhere").toBeGreaterThan(0);
}

const varied = ["hello the world", "café au lait, s'il vous plaît", "日本語のテキスト", "emoji 🙂👍🏽 done", "tabs\tand\nnewlines  ", "spaced out , before . and ! too", "x"];

// GPT-2's byte ↔ character table: printable Latin-1 bytes stand for themselves, the other 68 are
// moved to U+0100 onwards in byte order, so every byte is one visible character (" " is "Ġ").
function byteChars(): string[] {
  let moved = 0;
  return Array.from({ length: 256 }, (_, b) => {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    return String.fromCharCode(printable ? b : 256 + moved++);
  });
}

/** Byte-level BPE as GPT-2 ships it: bytes are ids 0..255, then one id per merge from 256. */
function byteLevelJson(): string {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => (vocab[c] = b));
  const merges = ["Ġ t", "h e", "Ġt he", "l l", "ll o", "he llo", "Ġ hello", "Ã ©"]; // "Ã©" is é's two bytes
  merges.forEach((m, i) => (vocab[m.replace(" ", "")] = 256 + i));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return JSON.stringify({
    version: "1.0",
    added_tokens: [{ id: 264, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}

describe("byte-level BPE tokenizer.json", () => {
  it("encodes strings to the ids its merges produce", async () => {
    const tokenizer = await load({ "tokenizer.json": byteLevelJson() });
    expect(tokenizer.kind).toBe("tokenizer.json");
    expect(tokenizer.vocabSize).toBe(265);
    expect(tokenizer.encode("hello")).toEqual([261]);
    expect(tokenizer.encode(" hello")).toEqual([262]);
    expect(tokenizer.encode("hello the")).toEqual([261, 258]);
    expect(tokenizer.encode("the")).toEqual([116, 257]);
    expect(tokenizer.encode("café")).toEqual([99, 97, 102, 263]);
    expect(tokenizer.encode("日本")).toEqual([0xe6, 0x97, 0xa5, 0xe6, 0x9c, 0xac]);
  });

  it("splits out the special token and skips it when decoding unless asked to keep it", async () => {
    const tokenizer = await load({ "tokenizer.json": byteLevelJson() });
    expect(tokenizer.encode("hello<|endoftext|>")).toEqual([261, 264]);
    expect(tokenizer.decode([261, 264])).toBe("hello");
    expect(tokenizer.decode([261, 264], { skipSpecial: false })).toBe("hello<|endoftext|>");
    expect(tokenizer.tokenId("<|endoftext|>")).toBe(264);
    expect(tokenizer.tokenId("Ġthe")).toBe(258);
    expect(tokenizer.tokenId("not a token")).toBeUndefined();
  });

  it("decodes what it encodes, accents, CJK and emoji included", async () => {
    const tokenizer = await load({ "tokenizer.json": byteLevelJson() });
    for (const text of varied) expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it("adds BOS through a Sequence post-processor after a Split pre-tokenizer, as Llama-3 ships them", async () => {
    const json = JSON.parse(byteLevelJson());
    json.added_tokens.push({ id: 265, content: "<|begin_of_text|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    const llama3Split = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json.pre_tokenizer = {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: llama3Split }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
    const bos = { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } };
    json.post_processor = {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [bos, { Sequence: { id: "A", type_id: 0 } }],
          pair: [bos, { Sequence: { id: "A", type_id: 0 } }, bos, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [265], tokens: ["<|begin_of_text|>"] } },
        },
      ],
    };
    json.model.ignore_merges = true;
    const tokenizer = await load({ "tokenizer.json": JSON.stringify(json) });
    expect(tokenizer.encode("hello the")).toEqual([265, 261, 258]);
    expect(tokenizer.encode("hello the", { special: false })).toEqual([261, 258]);
    for (const text of varied) expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it("rejects a token id outside its vocabulary with a TokenizerError", async () => {
    const tokenizer = await load({ "tokenizer.json": byteLevelJson() });
    expect(() => tokenizer.decode([261, 265])).toThrow(TokenizerError);
    expect(() => tokenizer.decode([1.5])).toThrow(/token id 1\.5 is not in the vocabulary/);
  });
});

/** SentencePiece-style BPE as Llama-2 ships it, with "▁" for spaces added either by the
 * Prepend/Replace normalizer (Llama-2's hub file) or by a Metaspace pre-tokenizer (newer conversions). */
function sentencePieceJson(spaces: "normalizer" | "metaspace"): string {
  const pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "é", "▁h", "ll", "ell", "▁hell", "▁hello", "▁w", "or", "▁wor", "ld", "▁world"];
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  pieces.forEach((p, i) => (vocab[p] = 259 + i));
  const merges = ["▁ h", "l l", "e ll", "▁h ell", "▁hell o", "▁ w", "o r", "▁w or", "l d", "▁wor ld"];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  return JSON.stringify({
    version: "1.0",
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer:
      spaces === "normalizer"
        ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] }
        : null,
    pre_tokenizer: spaces === "metaspace" ? { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false } : null,
    post_processor: {
      type: "TemplateProcessing",
      single: [bos, { Sequence: { id: "A", type_id: 0 } }],
      pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  });
}

describe.each(["normalizer", "metaspace"] as const)("SentencePiece-style BPE tokenizer.json (spaces by %s)", (spaces) => {
  const files = () => ({ "tokenizer.json": sentencePieceJson(spaces) });

  it("adds BOS through the post-processor and merges known pieces", async () => {
    const tokenizer = await load(files());
    expect(tokenizer.encode("hello world")).toEqual([1, 272, 277]);
    expect(tokenizer.encode("hello world", { special: false })).toEqual([272, 277]);
    expect(tokenizer.encode("héllo")).toEqual([1, 268, 267, 269, 263]);
    expect(tokenizer.tokenId("</s>")).toBe(2);
  });

  it("falls back to byte tokens for characters outside its vocabulary", async () => {
    const tokenizer = await load(files());
    // 日 is E6 97 A5 in UTF-8; <0xNN> is id 3 + NN.
    expect(tokenizer.encode("hello 日")).toEqual([1, 272, 259, 3 + 0xe6, 3 + 0x97, 3 + 0xa5]);
    expect(tokenizer.encode("x", { special: false })).toEqual([259, 3 + 0x78]);
  });

  it("decodes what it encodes, without BOS unless asked to keep it", async () => {
    const tokenizer = await load(files());
    expect(tokenizer.decode([1, 272, 277])).toBe("hello world");
    expect(tokenizer.decode([1, 272, 277], { skipSpecial: false })).toBe("<s> hello world");
    for (const text of varied) expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it("decodes every prefix of a multi-byte text while streaming", async () => {
    expectDecodesEveryPrefix(await load(files()), "hello 日本 wörld 🙂");
  });
});

describe("GPT-2's real vocabulary", () => {
  let gpt2: Tokenizer;
  beforeAll(async () => {
    const dir = await folder();
    await writeGpt2Tokenizer(dir);
    gpt2 = (await loadTokenizer(dir, { vocabSize: 50257 }))!;
  });

  const paragraphs = [
    "Hello world! It's a fine day, isn't it? We'll see what they've done.",
    "In 1969, 3 astronauts flew 384,400 km to the Moon; the mission cost $25.4 billion (about 4% of GDP).",
    "First line.\nSecond line, after a newline.\n\n  Indented   with   runs of spaces, and a trailing space \n",
    "She said: \"Don't panic\" -- then [quietly] ran off... e-mail me at someone@example.com #42 & more!",
    "The tokenizer's merges: rank 0 is 'Ġ t'; SOMETHING IN CAPITALS, MiXeD CaSe and numbers like 12345678.",
  ];

  it("gives GPT-2's ids for known strings", () => {
    expect(gpt2.vocabSize).toBe(50257);
    expect(gpt2.encode("Hello world")).toEqual([15496, 995]);
    expect(gpt2.encode(" the")).toEqual([262]);
    expect(gpt2.encode("<|endoftext|>")).toEqual([50256]);
    expect(gpt2.tokenId("<|endoftext|>")).toBe(50256);
  });

  it("encodes English prose, punctuation, numbers and newlines as gpt-3-encoder does", () => {
    for (const text of paragraphs) expect(gpt2.encode(text), text).toEqual(gptEncode(text));
  });

  it("decodes what it encodes, and what gpt-3-encoder decodes", () => {
    for (const text of [...paragraphs, ...varied]) {
      const ids = gpt2.encode(text);
      expect(gpt2.decode(ids)).toBe(text);
      expect(gpt2.decode(ids)).toBe(gptDecode(ids));
    }
  });

  it("decodes every prefix of a multi-byte text while streaming", () => {
    expectDecodesEveryPrefix(gpt2, "naïve café — 日本語 🙂👍🏽!");
  });
});

describe("folders without a tokenizer.json", () => {
  it("use UTF-8 bytes as token ids when the vocabulary is 256", async () => {
    const tokenizer = await loadTokenizer(await folder(), { vocabSize: 256 });
    expect(tokenizer?.kind).toBe("bytes");
    expect(tokenizer?.vocabSize).toBe(256);
    expect(tokenizer?.encode("hé")).toEqual([0x68, 0xc3, 0xa9]);
    for (const text of varied) expect(tokenizer?.decode(tokenizer.encode(text))).toBe(text);
    expect(tokenizer?.tokenId("A")).toBe(65);
    expect(() => tokenizer?.decode([256])).toThrow(TokenizerError);
  });

  it("have no tokenizer for any other vocabulary size", async () => {
    expect(await loadTokenizer(await folder(), { vocabSize: 32000 })).toBeUndefined();
  });

  it("decode every prefix of a multi-byte text as bytes while streaming", () => {
    expectDecodesEveryPrefix(byteTokenizer(), "日本 🙂 é");
  });
});

describe("malformed tokenizer files", () => {
  async function failure(files: Record<string, string>): Promise<{ dir: string; error: unknown }> {
    const dir = await folder(files);
    const error = await loadTokenizer(dir, { vocabSize: 256 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { dir, error };
  }

  it("reject invalid JSON with a TokenizerError naming the file", async () => {
    const { dir, error } = await failure({ "tokenizer.json": '{"model": {"type": "BPE",' });
    expect(error).toBeInstanceOf(TokenizerError);
    expect((error as Error).message).toContain(join(dir, "tokenizer.json"));
    expect((error as Error).message).toContain("not valid JSON");
  });

  it("reject an unknown model type with a TokenizerError naming the file and the type", async () => {
    const json = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, model: { type: "WordSoup", vocab: { a: 0 } } };
    const { dir, error } = await failure({ "tokenizer.json": JSON.stringify(json) });
    expect(error).toBeInstanceOf(TokenizerError);
    expect((error as Error).message).toContain(join(dir, "tokenizer.json"));
    expect((error as Error).message).toContain('"WordSoup"');
  });

  it("reject an unknown component type with a TokenizerError naming the file", async () => {
    const json = { ...JSON.parse(byteLevelJson()), decoder: { type: "Scramble" } };
    const { dir, error } = await failure({ "tokenizer.json": JSON.stringify(json) });
    expect(error).toBeInstanceOf(TokenizerError);
    expect((error as Error).message).toContain(join(dir, "tokenizer.json"));
    expect((error as Error).message).toContain("Scramble");
  });

  it("reject an invalid tokenizer_config.json with a TokenizerError naming it", async () => {
    const { dir, error } = await failure({ "tokenizer.json": byteLevelJson(), "tokenizer_config.json": "[1, 2" });
    expect(error).toBeInstanceOf(TokenizerError);
    expect((error as Error).message).toContain(join(dir, "tokenizer_config.json"));
  });
});

describe("tokenizer_config.json", () => {
  it("adds the added tokens tokenizer.json lacks and treats special ones as special", async () => {
    const config = { added_tokens_decoder: { "265": { content: "<|im_end|>", lstrip: false, rstrip: false, normalized: false, single_word: false, special: true } } };
    const tokenizer = await load({ "tokenizer.json": byteLevelJson(), "tokenizer_config.json": JSON.stringify(config) });
    expect(tokenizer.vocabSize).toBe(266);
    expect(tokenizer.tokenId("<|im_end|>")).toBe(265);
    expect(tokenizer.encode("hello<|im_end|>")).toEqual([261, 265]);
    expect(tokenizer.decode([261, 265])).toBe("hello");
  });
});
