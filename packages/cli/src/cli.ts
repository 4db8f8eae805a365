// The `dorafuse` command line: one table of subcommands, each in its own module under cli/,
// loaded only when it runs (so `doctor` never pays for the compiler's imports).
// Adding a subcommand is one line here plus its file. The commands are thin layers over
// library calls a user can make from TypeScript (@dorafuse/compiler, @dorafuse/models).

import type { Command } from "./commands/command.js";

const commands: Record<string, () => Promise<{ default: Command }>> = {
  doctor: () => import("./commands/doctor.js"),
  explain: () => import("./commands/explain.js"),
  compile: () => import("./commands/compile.js"),
  generate: () => import("./commands/generate.js"),
  finetune: () => import("./commands/finetune.js"),
  merge: () => import("./commands/merge.js"),
};

async function help(): Promise<string> {
  const lines = ["usage: dorafuse <command> [options]", "", "commands:"];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${(await load()).default.summary}`);
  lines.push("", "dorafuse <command> --help prints a command's options.");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(await help());
    return name === undefined ? 1 : 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`dorafuse: unknown command "${name}"\n\n${await help()}`);
    return 2;
  }
  const command = (await load()).default;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(command.usage);
    return 0;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Our typed errors carry complete messages; a stack trace would only bury them.
    const e = error as Error;
    console.error(`dorafuse: ${e?.name ?? "Error"}: ${e?.message ?? String(error)}`);
    if (process.env.DORAFUSE_DEBUG) console.error(e?.stack);
    process.exitCode = 1;
  },
);
