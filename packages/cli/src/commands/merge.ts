// `dorafuse merge <model-dir> --adapter <dir> --out <dir>`: @dorafuse/models' mergeAdapter.
import { mergeAdapter } from "@dorafuse/models";
import { checkOptions, parseArgs, reportingUserErrors, stringOption, UsageError, type Command } from "./command.js";

const usage = `usage: dorafuse merge <model-dir> --adapter <peft-dir> --out <dir>

Folds a PEFT LoRA/DoRA adapter into its base and writes a plain Hugging Face model folder:
config.json, model.safetensors (the base's tensor names and dtype) and the tokenizer files.
transformers loads it without PEFT; dorafuse generate <dir> runs it. <dir> must not exist
(or be empty); it appears only once complete.`;

async function run(args: string[]): Promise<number> {
  const { positional, options } = parseArgs(args);
  checkOptions(options, ["adapter", "out"], []);
  if (positional.length !== 1) throw new UsageError(`expected one model folder, found ${positional.length ? positional.join(" ") : "none"}`);
  const [adapter, out] = [stringOption(options, "adapter"), stringOption(options, "out")];
  if (!adapter || !out) throw new UsageError("--adapter and --out are required");
  const r = await mergeAdapter(positional[0]!, adapter, out);
  console.log(`${r.out}: ${r.layers.length} adapted layers merged, ${r.files.join(", ")} (${r.dtype})`);
  return 0;
}

const command: Command = {
  summary: "fold a PEFT adapter into its base model and write a plain Hugging Face folder",
  usage,
  run: (args) => reportingUserErrors("merge", () => run(args)),
};

export default command;
