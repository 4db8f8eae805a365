// Generation with a KV cache. One compiled function — the family's step — serves the prefill
// and the decode: it takes T tokens at positions start…start+T−1, writes their keys and values
// into the cache (plan state, kept on the GPU and updated in place) and returns the logits of
// one of them. The prompt goes through in chunks of a power-of-two length (the last one
// padded; what the padding writes past the prompt is overwritten before anything reads it),
// then each new token is one call with T = 1: no token is computed twice.
import { hostTensor, mergeAdapters, spec, type AdapterOptions, type HostTensor } from "@dorafuse/core";
import { compile, type CompiledFunction } from "@dorafuse/compiler";
import { upload, type Device, type Tensor as GpuTensor } from "@dorafuse/runtime";
import { ModelError } from "./errors.js";
import type { KvCache } from "./families/family.js";
import type { LoadedModel } from "./model.js";
import { checkSampling, sampleToken, seededRandom, type SamplingOptions } from "./sample.js";
import { uploadTables } from "./lm.js";

export interface GeneratorOptions {
  /** Longest prompt + continuation the cache holds (default: the model's context). */
  readonly capacity?: number;
  /** Parameters to run instead of the model's own (e.g. with an adapter attached). */
  readonly params?: unknown;
  /** The adapters' options, when `params` carries adapters run unmerged. */
  readonly adapters?: AdapterOptions;
  /** Longest prefill chunk (default 128). */
  readonly prefillChunk?: number;
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly seed?: number;
  /** Token ids that end the continuation (default: the config's eos_token_id). */
  readonly stop?: readonly number[];
  /** Called with each new token as it is chosen. */
  readonly onToken?: (id: number) => void | Promise<void>;
}

export interface Generation {
  /** The new token ids (the stop token included when one ended it). */
  readonly ids: number[];
  readonly stopped: "eos" | "length" | "context";
  /** Seconds spent on the prompt and on the new tokens. */
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
}

type Step = CompiledFunction<{ logits: unknown }>;

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export class Generator {
  /** Position of the next token. */
  #position = 0;

  private constructor(
    readonly model: LoadedModel,
    readonly capacity: number,
    readonly chunk: number,
    readonly params: unknown,
    readonly buffers: Record<string, GpuTensor>,
    readonly step: Step,
  ) {}

  static async create(model: LoadedModel, device: Device, opts: GeneratorOptions = {}): Promise<Generator> {
    const c = model.config;
    const capacity = Math.min(opts.capacity ?? c.maxPositions, c.maxPositions);
    const buffers = uploadTables(device, model.family, c, capacity);
    const zeros = new Float32Array(c.kvHeads * capacity * c.headDim);
    const slot = (name: string) => upload(device, zeros, { shape: [1, c.kvHeads, capacity, c.headDim], dtype: "f32", name });
    const cache: KvCache = { layers: Array.from({ length: c.layers }, (_, l) => ({ k: slot(`cache.${l}.k`), v: slot(`cache.${l}.v`) })) as never };
    const run = opts.adapters ? { adapters: opts.adapters, deterministic: true } : {};
    const fn = (p: unknown, b: Record<string, never>, kv: KvCache, ids: never, start: never, last: never) => {
      const r = model.family.step(p, b, kv, ids, start, last, c, run);
      return { logits: r.logits, cache: r.cache };
    };
    const params = opts.params ?? model.params;
    const step = (await compile(fn as never, [params, buffers, cache, spec([1, 1], "i32"), spec([], "i32"), spec([], "i32")], { device, state: { cache: 2 } })) as unknown as Step;
    return new Generator(model, capacity, Math.min(opts.prefillChunk ?? 128, capacity), params, buffers, step);
  }

  /** Tokens so far (the next token's position). */
  get position(): number {
    return this.#position;
  }

  /** Forgets the sequence: the next prefill starts at position 0. */
  reset(): void {
    this.#position = 0;
  }

  /** Runs `ids` at the next positions; the logits `[vocab]` of the last of them. */
  async feed(ids: readonly number[]): Promise<Float32Array> {
    if (ids.length === 0) throw new ModelError("generate: no tokens to feed (an empty prompt needs a BOS token)");
    if (this.#position + ids.length > this.capacity) {
      throw new ModelError(`generate: ${this.#position + ids.length} tokens do not fit the context of ${this.capacity} positions${this.capacity < this.model.config.maxPositions ? "" : " the model was trained for"}`);
    }
    const vocab = this.model.config.vocab;
    const bad = ids.find((i) => !(Number.isInteger(i) && i >= 0 && i < vocab));
    if (bad !== undefined) throw new ModelError(`generate: token id ${bad} is outside the vocabulary (0…${vocab - 1})`);
    let logits: Float32Array | undefined;
    for (let at = 0; at < ids.length; ) {
      const part = ids.slice(at, at + this.chunk);
      const width = part.length === 1 ? 1 : Math.min(nextPowerOfTwo(part.length), this.chunk);
      const padded = [...part, ...new Array<number>(width - part.length).fill(0)];
      const out = await this.step(this.params, this.buffers, hostTensor([1, width], padded, "i32"), scalarI32(this.#position), scalarI32(part.length - 1));
      this.#position += part.length;
      at += part.length;
      const t = (out as { logits: GpuTensor }).logits;
      if (at >= ids.length) logits = (await t.read()) as Float32Array;
      t.dispose();
    }
    return logits!;
  }

  /** Prefills `prompt` (from position 0) and samples up to `maxNewTokens` tokens. */
  async generate(prompt: readonly number[], opts: GenerateOptions): Promise<Generation> {
    const problem = checkSampling(opts);
    if (problem) throw new ModelError(`generate: ${problem}`);
    if (!(Number.isInteger(opts.maxNewTokens) && opts.maxNewTokens >= 0)) throw new ModelError(`generate: max-new-tokens must be a whole number ≥ 0, found ${opts.maxNewTokens}`);
    if (prompt.length >= this.capacity) throw new ModelError(`generate: the prompt has ${prompt.length} tokens; the context holds ${this.capacity}, so at most ${this.capacity - 1} leave room for a new token`);
    this.reset();
    const stop = new Set(opts.stop ?? this.model.config.eos);
    const random = seededRandom(opts.seed ?? 0);
    const ids: number[] = [];
    const t0 = performance.now();
    let logits = await this.feed(prompt);
    const t1 = performance.now();
    let stopped: Generation["stopped"] = "length";
    while (ids.length < opts.maxNewTokens) {
      const id = sampleToken(logits, opts, random);
      ids.push(id);
      await opts.onToken?.(id);
      if (stop.has(id)) {
        stopped = "eos";
        break;
      }
      if (ids.length >= opts.maxNewTokens) break;
      if (this.#position >= this.capacity) {
        stopped = "context";
        break;
      }
      logits = await this.feed([id]);
    }
    return { ids, stopped, prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (performance.now() - t1) / 1000 };
  }

  dispose(): void {
    this.step.dispose();
    for (const b of Object.values(this.buffers)) b.dispose();
  }
}

const scalarI32 = (v: number): HostTensor => hostTensor([], [v], "i32");

/**
 * The parameters with every adapter folded into its layer (W' = W + s·B·A, or DoRA's
 * g ⊙ (W + s·B·A)), computed on the GPU in f32 and stored back in each weight's own dtype
 * (core's merge does both).
 */
export async function mergeOnDevice(params: unknown, options: AdapterOptions, device: Device): Promise<unknown> {
  const merged = await compile(((p: unknown) => mergeAdapters(p as never, options)) as never, [params], { device });
  const out = await merged(params);
  merged.dispose();
  return out;
}
