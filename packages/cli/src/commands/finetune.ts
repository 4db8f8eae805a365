// `dorafuse finetune <model-dir> --data <file> --out <dir>`: @dorafuse/models' finetune with a
// progress bar. Ctrl-C stops after the current step with the checkpoint written, and
// `--resume` continues exactly where it stopped.
import { finetune, Progress, type FinetuneOptions, type Method, type ScheduleName } from "@dorafuse/models";
import { checkOptions, numberOption, parseArgs, reportingUserErrors, stringOption, UsageError, type Command } from "./command.js";

const usage = `usage: dorafuse finetune <model-dir> --data <file> --out <dir> [options]

Fine-tunes a Hugging Face model folder (Llama, Mistral, Qwen2, SmolLM, TinyLlama or GPT-2) on
text. <dir> gets the PEFT adapter (adapter_config.json, adapter_model.safetensors: load it with
PeftModel.from_pretrained, or dorafuse generate <model-dir> --adapter <dir>), or with --method
full the fine-tuned model folder; and the checkpoint, settings and log of the run.
  --data FILE           .txt (one text) or .jsonl (a "text" field per line; EOS between documents)
  --method M            dora (default), lora or full
  --rank R, --alpha A   adapter rank (default 8) and alpha (default 2·rank)
  --dropout P           adapter dropout (default 0)     --rslora   scale alpha/√rank
  --targets a,b,c       modules to adapt (default: every attention and MLP projection)
  --steps N             optimizer steps (default 200)   --batch B   sequences per step (default 4)
  --seq S               tokens per sequence (default min(256, context))
  --grad-accum K        micro-batches of --batch per step (default 1)
  --lr LR               peak learning rate (default 2e-4; full 2e-5)
  --schedule S          cosine (default, to lr/10), linear (to 0) or constant, after
  --warmup N            linear warm-up steps (default steps/10, at most 100)
  --weight-decay W      AdamW's (default 0; full 0.01)    --clip-norm C (default 1)
  --val FILE            validation text; otherwise the last --val-fraction (default 0.1) of --data
  --eval-every N        validation every N steps (default steps/10); --eval-batches N (default 8)
  --save-every N        checkpoint and outputs every N steps (default 100)
  --resume              continue the run in --out from its checkpoint
  --adapter DIR         continue training a PEFT adapter
  --seed S              batches, initialization and dropout (default 0)
  --dtype f16|f32       the frozen base on the GPU (default f16 where the adapter has shader-f16)`;

const VALUES = ["data", "out", "method", "rank", "alpha", "dropout", "targets", "steps", "batch", "seq", "grad-accum", "lr", "schedule", "warmup", "weight-decay", "clip-norm", "val", "val-fraction", "eval-every", "eval-batches", "save-every", "adapter", "seed", "dtype"] as const;
const FLAGS = ["rslora", "resume"] as const;

function options(args: string[]): FinetuneOptions {
  const { positional, options: given } = parseArgs(args);
  checkOptions(given, VALUES, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one model folder, found ${positional.length ? positional.join(" ") : "none"}`);
  const [data, out] = [stringOption(given, "data"), stringOption(given, "out")];
  if (!data || !out) throw new UsageError(`--data and --out are required`);
  const num = (name: string, whole: boolean) => numberOption(given, name, whole);
  const targets = stringOption(given, "targets");
  const picked: Record<string, unknown> = {
    method: stringOption(given, "method") as Method | undefined,
    rank: num("rank", true),
    alpha: num("alpha", false),
    dropout: num("dropout", false),
    rsLora: given.has("rslora") || undefined,
    targets: targets?.split(",").map((t) => t.trim()).filter(Boolean),
    steps: num("steps", true),
    batch: num("batch", true),
    seq: num("seq", true),
    gradAccum: num("grad-accum", true),
    lr: num("lr", false),
    schedule: stringOption(given, "schedule") as ScheduleName | undefined,
    warmup: num("warmup", true),
    weightDecay: num("weight-decay", false),
    clipNorm: num("clip-norm", false),
    val: stringOption(given, "val"),
    valFraction: num("val-fraction", false),
    evalEvery: num("eval-every", true),
    evalBatches: num("eval-batches", true),
    saveEvery: num("save-every", true),
    adapter: stringOption(given, "adapter"),
    seed: num("seed", true),
    dtype: stringOption(given, "dtype") as "f16" | "f32" | undefined,
    resume: given.has("resume") || undefined,
  };
  return { model: positional[0]!, data, out, ...Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) } as FinetuneOptions;
}

async function run(args: string[]): Promise<number> {
  const opts = options(args);
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    console.error("\nstopping after this step (the checkpoint is written first); Ctrl-C again quits at once");
  };
  process.on("SIGINT", onSignal);
  let progress: Progress | undefined;
  try {
    const result = await finetune({
      ...opts,
      signal: stop.signal,
      report: (e) => {
        if (e.type === "start") {
          const s = e.settings;
          const what = s.method === "full" ? "full fine-tuning" : `${s.method} rank ${s.rank}, alpha ${s.alpha} on ${s.targets.join(", ")}`;
          console.log(`${s.model}: ${what}; ${e.trainable.toLocaleString("en")} of ${e.total.toLocaleString("en")} parameters train`);
          console.log(`${s.data}: ${e.trainTokens.toLocaleString("en")} training tokens, ${e.validationTokens.toLocaleString("en")} validation tokens; ${s.steps} steps of ${s.gradAccum > 1 ? `${s.gradAccum} × ` : ""}${s.batch} × ${s.seq} tokens${e.step > 0 ? `, resuming at step ${e.step}` : ""}`);
          progress = new Progress({ total: s.steps, start: e.step, label: s.method });
        } else if (e.type === "step") progress?.update(e.step, { loss: e.loss, tokens: e.tokens });
        else if (e.type === "eval") (progress ?? console).log(`step ${e.step}: validation loss ${e.loss.toFixed(4)}`);
      },
    });
    progress?.done();
    if (result.interrupted) {
      console.error(`interrupted at step ${result.step} of ${result.settings.steps}; ${opts.out} holds its checkpoint: run the same command with --resume to continue`);
      return 130;
    }
    const last = result.validation.at(-1);
    const first = result.validation[0];
    console.log(`done: ${result.step} steps, validation loss ${first && first.step === 0 ? `${first.loss.toFixed(4)} → ` : ""}${last?.loss.toFixed(4)}, ${(result.tokens / Math.max(result.seconds, 1e-9)).toFixed(0)} tokens/s`);
    console.log(result.settings.method === "full" ? `the model: ${opts.out} (dorafuse generate ${opts.out})` : `the adapter: ${opts.out} (dorafuse generate ${opts.model} --adapter ${opts.out}; dorafuse merge ${opts.model} --adapter ${opts.out} --out <dir>)`);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
  }
}

const command: Command = {
  summary: "fine-tune a Hugging Face model folder on text with DoRA, LoRA or all weights; writes a PEFT adapter",
  usage,
  run: (args) => reportingUserErrors("finetune", () => run(args)),
};

export default command;
