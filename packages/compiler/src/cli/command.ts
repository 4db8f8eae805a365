// The shape of one `dorafuse` subcommand: a module under cli/ whose default export is this.

export interface Command {
  /** One line for `dorafuse help`. */
  summary: string;
  /** Usage text for `dorafuse <name> --help`. */
  usage: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** `--name value` and `--name=value` options and bare `--flag`s, with the positional arguments. */
export function parseArgs(args: readonly string[]): { positional: string[]; options: Map<string, string | true> } {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    if (eq > 0) options.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (i + 1 < args.length && !args[i + 1]!.startsWith("--")) options.set(arg.slice(2), args[++i]!);
    else options.set(arg.slice(2), true);
  }
  return { positional, options };
}
