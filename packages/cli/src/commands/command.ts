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

/**
 * One command's arguments checked against what it takes: exactly one positional argument (the
 * module), the `values` options each given a value, and no option outside `values` and
 * `flags`. Returns them, or what was wrong — the command prints that with its usage.
 */
export function checkArgs(
  args: readonly string[],
  takes: { values: readonly string[]; flags: readonly string[]; expected: string },
): { file: string; values: Record<string, string>; flags: Set<string> } | { error: string } {
  const { positional, options } = parseArgs(args);
  const known = new Set([...takes.values, ...takes.flags]);
  const unknown = [...options.keys()].filter((k) => !known.has(k));
  const values = Object.fromEntries(takes.values.map((k) => [k, options.get(k)]));
  if (positional.length !== 1 || Object.values(values).some((v) => typeof v !== "string")) {
    return { error: `expected ${takes.expected}${unknown.length ? `; unknown ${unknown.map((k) => `--${k}`).join(" ")}` : ""}` };
  }
  if (unknown.length) return { error: `unknown ${unknown.map((k) => `--${k}`).join(" ")}` };
  return { file: positional[0]!, values: values as Record<string, string>, flags: new Set(takes.flags.filter((k) => options.has(k))) };
}

/** A mistake the user can fix in the command line: printed as one line with a pointer to --help, exit 2. */
export class UsageError extends Error {}

/** The number an option holds (undefined when not given); `whole` asks for an integer. */
export function numberOption(options: Map<string, string | true>, name: string, whole: boolean): number | undefined {
  const raw = options.get(name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw === true || raw === "" || !Number.isFinite(v) || (whole && !Number.isInteger(v))) throw new UsageError(`--${name} needs ${whole ? "a whole number" : "a number"}, found ${raw === true ? "nothing" : JSON.stringify(raw)}`);
  return v;
}

/** The string an option holds (undefined when not given); a bare flag where a value belongs is an error. */
export function stringOption(options: Map<string, string | true>, name: string): string | undefined {
  const raw = options.get(name);
  if (raw === true) throw new UsageError(`--${name} needs a value`);
  return raw;
}

/** Options outside what a command takes are an error naming them. */
export function checkOptions(options: Map<string, string | true>, values: readonly string[], flags: readonly string[]): void {
  const unknown = [...options.keys()].filter((k) => !values.includes(k) && !flags.includes(k));
  if (unknown.length) throw new UsageError(`unknown ${unknown.map((k) => `--${k}`).join(" ")}`);
  for (const f of flags) if (typeof options.get(f) === "string") throw new UsageError(`--${f} takes no value, found ${JSON.stringify(options.get(f))}`);
}

// errors that describe the user's files or flags completely: one line, not a stack trace
const USER_ERRORS = ["ModelError", "TokenizerError", "SafetensorsError", "CheckpointError", "AdapterError"];

/** Runs a command body, turning the user's mistakes into one line on stderr and exit code 2. */
export async function reportingUserErrors(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const e = error as Error;
    if (!(e instanceof UsageError) && !USER_ERRORS.includes(e?.name)) throw error;
    console.error(`dorafuse ${name}: ${e.message.split("\n").join(" ")}${e instanceof UsageError ? `\n(dorafuse ${name} --help for the options)` : ""}`);
    return 2;
  }
}
