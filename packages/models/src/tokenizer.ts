// Text ↔ token ids for a Hugging Face model folder. The tokenizer.json is read by
// @huggingface/tokenizers (tokenizers.js): Hugging Face maintains it as a port of the Rust
// `tokenizers` library that transformers uses, over the same tokenizer.json format and the same
// algorithms (byte-level BPE, SentencePiece-style BPE with byte fallback, WordPiece, Unigram),
// and it is pure TypeScript, so there is no native build or download to install it.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";

export interface Tokenizer {
  /** Where the vocabulary came from: a tokenizer.json, plain UTF-8 bytes (vocabulary 256), or none (token ids only). */
  readonly kind: "tokenizer.json" | "bytes";
  readonly vocabSize: number;
  /** Token ids of `text`, with the special tokens the tokenizer's post-processor adds (BOS for Llama-2/3), as transformers' tokenizer(text) does; `{ special: false }` leaves them out. */
  encode(text: string, opts?: { special?: boolean }): number[];
  /** The text of `ids`, special tokens skipped by default (`{ skipSpecial: false }` keeps them). Must be usable for streaming: decoding a prefix of a token sequence never throws (an incomplete UTF-8 sequence at the end decodes to U+FFFD, which callers hold back). */
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  /** Id of a token string when it is in the vocabulary (e.g. "<|endoftext|>", "</s>"). */
  tokenId(token: string): number | undefined;
}

/** A tokenizer file that cannot be read or used, or token ids that are not in its vocabulary. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
}

// The part of the library's Tokenizer used here. The package's .d.ts files import one another
// without file extensions, which NodeNext resolution cannot follow, so its own types arrive as
// `any`; this interface restores checking at the one place the library is called.
interface HfTokenizerApi {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: (number | undefined)[]; tokens: string[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  model: { vocab: (string | undefined)[] };
}

type Json = Record<string, unknown>;

// The tokenizer.json model types the library implements. It does not reject an unknown type: a
// model with a vocabulary falls through to a "Legacy" model that silently maps whole words.
const MODEL_TYPES = ["BPE", "WordPiece", "Unigram"];

/** Reads `<dir>/tokenizer.json` (and `tokenizer_config.json` beside it when present, for added/special tokens) through @huggingface/tokenizers. Without a tokenizer.json: a byte tokenizer (UTF-8 bytes as ids 0..255) when `vocabSize` is 256, otherwise undefined (the model takes token ids only). A malformed or unsupported file is a TokenizerError naming the file and what was wrong. */
export async function loadTokenizer(dir: string, opts: { vocabSize: number }): Promise<Tokenizer | undefined> {
  const path = join(dir, "tokenizer.json");
  const json = await readJsonObject(path);
  if (json === undefined) return opts.vocabSize === 256 ? byteTokenizer() : undefined;
  const config = (await readJsonObject(join(dir, "tokenizer_config.json"))) ?? {};

  const model = json.model;
  if (typeof model !== "object" || model === null || Array.isArray(model)) {
    throw new TokenizerError(`${path}: expected "model" to be an object, found ${describe(model)}`);
  }
  const type = (model as Json).type;
  // Old files (GPT-2's first upload) leave the type out; the library infers it from the fields.
  if (type !== undefined && !MODEL_TYPES.includes(type as string)) {
    throw new TokenizerError(`${path}: model.type ${JSON.stringify(type)} is not supported (expected one of ${MODEL_TYPES.join(", ")})`);
  }
  if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens)) {
    throw new TokenizerError(`${path}: expected "added_tokens" to be an array, found ${describe(json.added_tokens)}`);
  }

  let hf: HfTokenizerApi;
  try {
    hf = new HfTokenizer(withDefaults(json, config), config) as HfTokenizerApi;
  } catch (e) {
    throw new TokenizerError(`${path}: ${(e as Error).message}`);
  }
  return wrap(hf, path);
}

function wrap(hf: HfTokenizerApi, path: string): Tokenizer {
  const vocabSize = hf.model.vocab.length;
  return {
    kind: "tokenizer.json",
    vocabSize,
    encode(text, opts) {
      const { ids, tokens } = hf.encode(text, { add_special_tokens: opts?.special ?? true });
      const missing = ids.findIndex((id) => id === undefined);
      if (missing >= 0) throw new TokenizerError(`${path}: token ${JSON.stringify(tokens[missing])} has no id in the vocabulary`);
      return ids as number[];
    },
    decode(ids, opts) {
      for (const id of ids) {
        if (!Number.isInteger(id) || hf.id_to_token(id) === undefined) {
          throw new TokenizerError(`${path}: token id ${id} is not in the vocabulary (${vocabSize} ids)`);
        }
      }
      // The library refuses an empty list; an empty prefix is ordinary when streaming.
      if (ids.length === 0) return "";
      // No transformers-style clean-up (" ." → "."): it is not part of tokenizer.json, it loses
      // text, and it can change an earlier prefix once a later token arrives, breaking streaming.
      return hf.decode([...ids], { skip_special_tokens: opts?.skipSpecial ?? true, clean_up_tokenization_spaces: false });
    },
    tokenId: (token) => hf.token_to_id(token),
  };
}

// The library requires every component key to be present (the Rust library writes null for an
// absent one) and takes added tokens only from tokenizer.json; transformers also adds those of
// tokenizer_config.json's `added_tokens_decoder`, so the ones tokenizer.json lacks are merged in.
function withDefaults(json: Json, config: Json): Json {
  const added = [...((json.added_tokens as Json[] | undefined) ?? [])];
  const known = new Set(added.map((t) => t.id));
  const decoder = config.added_tokens_decoder;
  if (typeof decoder === "object" && decoder !== null) {
    for (const [id, token] of Object.entries(decoder as Record<string, Json>)) {
      if (!known.has(Number(id)) && typeof token?.content === "string") added.push({ ...token, id: Number(id) });
    }
  }
  return { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: added };
}

/** The JSON object in `path`, or undefined when there is no such file. */
async function readJsonObject(path: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TokenizerError(`${path}: cannot be read (${(e as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerError(`${path}: expected a JSON object, found ${describe(value)}`);
  }
  return value as Json;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

/** UTF-8 bytes as token ids 0..255, for byte-level models that ship no tokenizer.json. */
export function byteTokenizer(): Tokenizer {
  const utf8 = new TextEncoder();
  // Not fatal, so an incomplete sequence at the end decodes to U+FFFD; ignoreBOM keeps a leading
  // U+FEFF the text really had.
  const text = new TextDecoder("utf-8", { ignoreBOM: true });
  return {
    kind: "bytes",
    vocabSize: 256,
    encode: (s) => Array.from(utf8.encode(s)),
    decode(ids) {
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id > 255) {
          throw new TokenizerError(`byte tokenizer: token id ${id} is not a byte (expected an integer 0..255)`);
        }
      }
      return text.decode(Uint8Array.from(ids));
    },
    tokenId(token) {
      const bytes = utf8.encode(token);
      return bytes.length === 1 ? bytes[0] : undefined;
    },
  };
}
