// The user's call site: the first stack frame outside dorafuse's core sources. Errors name
// it so a bad matmul points at the line of the model that wrote it, not at a shape rule.
// Computed only when needed (an error, or `trace(…, { sites: true })`): formatting a stack
// costs microseconds, which adds up over the thousands of ops of a training step.
// No node: imports, so the core stays usable outside Node.js.

// Frames from these files are dorafuse's own. Matching the folder rather than a package name
// keeps it right when the sources run directly (tests, tsx) and when built to dist/.
const OWN = /[\\/]packages[\\/]core[\\/](src|dist)[\\/]/;
const FRAME = /\(?((?:file:\/\/)?[^\s()]+?):(\d+):(\d+)\)?\s*$/;

function isUserFrame(file: string): boolean {
  return !OWN.test(file) && !file.startsWith("node:") && !/[\\/]node_modules[\\/]/.test(file);
}

const cwd = (): string | undefined => (globalThis as { process?: { cwd?: () => string } }).process?.cwd?.();

/** A file URL or path as a path relative to the working directory when it lies below it. */
function shortPath(file: string): string {
  const path = file.startsWith("file://") ? decodeURIComponent(file.slice(7).replace(/^\/([A-Za-z]:)/, "$1")) : file;
  const dir = cwd();
  return dir && path.startsWith(dir + "/") ? path.slice(dir.length + 1) : path;
}

/** `path/to/model.ts:12:7` of the innermost user frame, relative to the working directory. */
export function callSite(): string | undefined {
  const E = Error as { stackTraceLimit?: number };
  const limit = E.stackTraceLimit;
  E.stackTraceLimit = 64;
  const stack = new Error().stack ?? "";
  E.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1]!;
    if (!isUserFrame(file)) continue;
    return `${shortPath(file)}:${m[2]}:${m[3]}`;
  }
  return undefined;
}
