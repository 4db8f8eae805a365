// The main job's command line:
//
//   npm run main [-- --layers 4 --dim 128 … see --help]
//
// pretrains a byte-level GPT on the State of the Union addresses, fine-tunes it on Moby Dick
// with full fine-tuning, LoRA and DoRA, and writes everything to out/<run>/ (see run.ts and
// the README).
import { relative } from "node:path";
import { parseFlags } from "./config.js";
import { bitsPerByte } from "./data.js";
import { ReportError } from "./errors.js";
import { runFinetune } from "./run.js";

async function main(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const { config, options } = parsed;
  const command = ["npm run main", ...(argv.length ? ["--", ...argv] : [])].join(" ");
  const { paths, record, programs } = await runFinetune(config, options, { command });
  const here = (p: string) => relative(process.cwd(), p) || p;
  console.log("");
  for (const m of record.methods) {
    const r = m.result;
    console.log(`${r.method.padEnd(5)} ${bitsPerByte(r.validationLoss).toFixed(3)} bits/byte on Moby Dick (base ${bitsPerByte(record.base.target).toFixed(3)}), ${r.trainableParams.toLocaleString("en")} trainable, ${r.stepTimeMs.toFixed(0)} ms/step`);
  }
  console.log(`\ndone in ${record.seconds.total!.toFixed(0)} s; wrote ${here(paths.root)}/ (results.md, loss.svg, pretrain.svg, analysis.svg, samples.md, checkpoints, adapters, merged models)`);
  for (const p of Object.values(programs)) p.dispose();
  programs.pretrain.device.dispose();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // a bad flag is the user's to fix: its message (with the usage) is enough, not our stack
    if (error instanceof ReportError) {
      console.error(`main: ${error.message}`);
      process.exit(2);
    }
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
