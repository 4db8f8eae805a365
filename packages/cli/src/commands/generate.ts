// `dorafuse generate <model-dir>`: loads a Hugging Face folder (and optionally a PEFT adapter),
// compiles the prefill/decode step and prints the continuation as it is produced — or, with
// --json, one JSON object and nothing else on stdout. Everything a user can get wrong (the
// folder, the adapter, the flags, a prompt longer than the context) is one line on stderr and
// exit code 2.
import { createDevice } from "@dorafuse/runtime";
import { attachAdapter, Generator, loadModel, mergeOnDevice, type Tokenizer } from "@dorafuse/models";
import { upload } from "@dorafuse/runtime";
import { checkOptions, numberOption as number, parseArgs, reportingUserErrors, UsageError, type Command } from "./command.js";

const usage = `usage: dorafuse generate <model-dir> (--prompt TEXT | --ids 1,2,3) [--adapter <peft-dir>] [--merge]
                        [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
                        [--dtype f16|f32] [--json]

Loads a Hugging Face model folder (config.json, model.safetensors or shards, tokenizer.json;
Llama, Mistral, Qwen2, SmolLM, TinyLlama or GPT-2) and continues the prompt with a KV cache.
  --prompt TEXT         text, encoded with the folder's tokenizer (BOS added as transformers does)
  --ids 1,2,3           token ids instead (for a folder without a tokenizer)
  --adapter DIR         a PEFT LoRA/DoRA adapter (adapter_config.json, adapter_model.safetensors)
  --merge               fold the adapter into the weights first instead of running it unmerged
  --max-new-tokens N    at most N new tokens (default 64); EOS stops earlier
  --temperature T       0 (the default) is greedy; otherwise sample from softmax(logits / T)
  --top-k K, --top-p P  keep the K most likely tokens / the most likely ones summing to P
  --seed S              the sampling seed (default 0): the same seed gives the same text
  --dtype f16|f32       frozen weights in f16 (default where the adapter has shader-f16) or f32
  --json                print {"ids": [...], "text": "..."} and nothing else on stdout`;

const VALUES = ["prompt", "ids", "adapter", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "dtype"] as const;
const FLAGS = ["json", "merge"] as const;

/** The prompt's token ids, from --ids or through the tokenizer. */
function promptIds(options: Map<string, string | true>, tokenizer: Tokenizer | undefined): number[] {
  const text = options.get("prompt");
  const ids = options.get("ids");
  if ((text === undefined) === (ids === undefined)) throw new UsageError("give exactly one of --prompt TEXT and --ids 1,2,3");
  if (ids !== undefined) {
    const list = ids === true ? [] : ids.split(",").map((s) => s.trim());
    if (list.length === 0 || list.some((s) => !/^\d+$/.test(s))) throw new UsageError(`--ids needs comma-separated token ids, found ${JSON.stringify(ids === true ? "" : ids)}`);
    return list.map(Number);
  }
  if (!tokenizer) throw new UsageError("this folder has no tokenizer.json (and its vocabulary is not 256 bytes): give token ids with --ids");
  return tokenizer.encode(text === true ? "" : text!);
}

/** Writes the text of the new tokens as they come, holding back an incomplete UTF-8 character. */
function streamer(tokenizer: Tokenizer | undefined, write: (s: string) => void): { push(id: number): void; end(): void } {
  const ids: number[] = [];
  let shown = "";
  const flush = (final: boolean) => {
    let text = tokenizer!.decode(ids);
    if (!final) text = text.replace(/\uFFFD+$/, "");
    if (text.startsWith(shown) && text.length > shown.length) {
      write(text.slice(shown.length));
      shown = text;
    }
  };
  if (!tokenizer) return { push: (id) => write(`${ids.push(id) > 1 ? " " : ""}${id}`), end: () => write("\n") };
  return { push: (id) => (ids.push(id), flush(false)), end: () => (flush(true), write("\n")) };
}

async function run(args: string[]): Promise<number> {
  const { positional, options } = parseArgs(args);
  checkOptions(options, VALUES, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one model folder, found ${positional.length ? positional.join(" ") : "none"}`);
  const dtype = options.get("dtype");
  if (dtype !== undefined && dtype !== "f16" && dtype !== "f32") throw new UsageError(`--dtype must be f16 or f32, found ${JSON.stringify(dtype)}`);
  if (options.has("merge") && !options.has("adapter")) throw new UsageError("--merge needs --adapter");
  const maxNewTokens = number(options, "max-new-tokens", true) ?? 64;
  const sampling = { temperature: number(options, "temperature", false), topK: number(options, "top-k", true), topP: number(options, "top-p", false), seed: number(options, "seed", true) };
  const json = options.has("json");

  const device = await createDevice();
  try {
    const model = await loadModel(positional[0]!, device, dtype ? { dtype } : {});
    const prompt = promptIds(options, model.tokenizer);
    let params = model.params;
    let adapters;
    const adapterDir = options.get("adapter");
    if (typeof adapterDir === "string") {
      const attached = await attachAdapter(adapterDir, model.params, (name, shape, data) => upload(device, data, { shape, dtype: "f32", name }));
      params = attached.params;
      adapters = attached.options;
      if (options.has("merge")) {
        params = await mergeOnDevice(params, adapters, device);
        adapters = undefined;
      }
    } else if (adapterDir === true) throw new UsageError("--adapter needs a folder");
    const capacity = Math.min(model.config.maxPositions, Math.ceil((prompt.length + Math.max(1, maxNewTokens)) / 64) * 64);
    if (prompt.length >= model.config.maxPositions) throw new UsageError(`the prompt has ${prompt.length} tokens; ${model.dir} has a context of ${model.config.maxPositions}`);
    const gen = await Generator.create(model, device, { capacity, params, ...(adapters ? { adapters } : {}) });
    const out = streamer(model.tokenizer, (s) => process.stdout.write(s));
    const result = await gen.generate(prompt, {
      maxNewTokens,
      ...Object.fromEntries(Object.entries(sampling).filter(([, v]) => v !== undefined)),
      ...(json ? {} : { onToken: (id: number) => out.push(id) }),
    });
    gen.dispose();
    if (json) {
      const text = model.tokenizer?.decode(result.ids);
      process.stdout.write(`${JSON.stringify({ ids: result.ids, ...(text !== undefined ? { text } : {}) })}\n`);
    } else {
      out.end();
      const tps = result.ids.length > 1 ? ((result.ids.length - 1) / result.decodeSeconds).toFixed(1) : "–";
      process.stderr.write(`[${prompt.length} prompt tokens in ${result.prefillSeconds.toFixed(2)} s, ${result.ids.length} new (${tps} tokens/s), stopped: ${result.stopped}]\n`);
    }
    return 0;
  } finally {
    device.dispose();
  }
}

const command: Command = {
  summary: "continue a prompt with a Hugging Face model folder (and a PEFT adapter), with a KV cache",
  usage,
  run: (args) => reportingUserErrors("generate", () => run(args)),
};

export default command;
