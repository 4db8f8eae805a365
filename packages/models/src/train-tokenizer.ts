// Training a byte-level BPE tokenizer, written as the tokenizer.json that @huggingface/tokenizers
// and transformers read: GPT-2's scheme (its pre-tokenizer regex, bytes mapped to printable
// characters, merges learned by pair frequency). @huggingface/tokenizers runs tokenizers but
// does not train them, so the project ships this small trainer for the base model it
// pretrains. Merges are found incrementally (only the words holding the merged pair are
// recounted); ties go to the pair seen first in byte order, so a corpus always gives the same
// tokenizer.

/** GPT-2's pre-tokenizer: contractions, words, numbers, punctuation runs, whitespace. */
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to code points from 256 up. */
export function byteCharacters(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : next++));
  return chars;
}

export interface TrainTokenizerOptions {
  /** The whole vocabulary: 256 bytes, the merges, and the special tokens (default 2048). */
  readonly vocabSize?: number;
  /** Special tokens, given the last ids (default ["<|endoftext|>"]). */
  readonly special?: readonly string[];
}

/** A tokenizer.json object for `texts`. */
export function trainTokenizer(texts: Iterable<string>, opts: TrainTokenizerOptions = {}): Record<string, unknown> {
  const special = opts.special ?? ["<|endoftext|>"];
  const vocabSize = opts.vocabSize ?? 2048;
  const merges = vocabSize - 256 - special.length;
  if (merges < 0) throw new Error(`trainTokenizer: a vocabulary of ${vocabSize} cannot hold the 256 bytes and ${special.length} special tokens`);
  const chars = byteCharacters();
  const encoder = new TextEncoder();

  // unique pre-tokenized words and their counts, as byte ids
  const counts = new Map<string, number>();
  for (const text of texts) for (const m of text.matchAll(PRETOKENIZE)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  const words = [...counts].map(([w, count]) => ({ symbols: Array.from(encoder.encode(w)), count }));

  // symbol strings: bytes first, then one per merge
  const tokens = chars.slice();
  const pairKey = (a: number, b: number) => a * 65536 + b;
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1) => {
    const { symbols, count } = words[wi]!;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const k = pairKey(symbols[i]!, symbols[i + 1]!);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * count);
      if (sign > 0) (pairWords.get(k) ?? pairWords.set(k, new Set()).get(k)!).add(wi);
    }
  };
  words.forEach((_, i) => addPairs(i, 1));

  const learned: string[] = [];
  for (let m = 0; m < merges; m++) {
    let best = -1;
    let bestCount = 0;
    for (const [k, c] of pairCount) if (c > bestCount || (c === bestCount && c > 0 && k < best)) [best, bestCount] = [k, c];
    if (bestCount < 1) break; // every word is one token: the vocabulary ends smaller
    const [a, b] = [Math.floor(best / 65536), best % 65536];
    const id = tokens.length;
    tokens.push(tokens[a]! + tokens[b]!);
    learned.push(`${tokens[a]} ${tokens[b]}`);
    for (const wi of pairWords.get(best) ?? []) {
      addPairs(wi, -1);
      const s = words[wi]!.symbols;
      const merged: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          merged.push(id);
          i++;
        } else merged.push(s[i]!);
      }
      words[wi]!.symbols = merged;
      addPairs(wi, 1);
    }
    pairWords.delete(best);
    pairCount.delete(best);
  }

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const first = tokens.length;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content, i) => ({ id: first + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: learned },
  };
}
