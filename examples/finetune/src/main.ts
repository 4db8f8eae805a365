// The main job's command line:
//
//   npm run main [-- --ranks 4,16 --seeds 0,1,2 … see --help]
//
// fine-tunes the shipped base (models/sotu-llama) on Moby Dick with DoRA, LoRA and full
// fine-tuning through the models package's `finetune`, and writes the tables, plots, analysis,
// samples, adapters and merged models to examples/finetune/out/<run>/ (see job.ts).
import { relative } from "node:path";
import { UsageError } from "./errors.js";
import { parseFlags } from "./flags.js";
import { runJob } from "./job.js";
import { summaryTable } from "./report.js";

async function main(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const record = await runJob(parsed.options);
  console.log(`\nbase: ${record.base.loss.toFixed(4)} nats/token, ${record.base.bits.toFixed(3)} bits/byte held out\n`);
  console.log(summaryTable(record.runs));
  console.log(`\ndone in ${record.seconds.toFixed(0)} s; wrote ${relative(process.cwd(), record.root) || record.root}/ (results.md, results.json, loss.svg, analysis-*.svg, samples.md, adapters, merged models)`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // a bad flag is the user's to fix: its message is enough, not our stack
    if (error instanceof UsageError) {
      console.error(`main: ${error.message}`);
      process.exit(2);
    }
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
