// Importing the user's TypeScript module for `dorafuse compile`. Under tsx (the CLI) or a
// test runner, a plain dynamic import already understands TypeScript. From plain Node (a
// build script running the compiled library) it does not: then tsx's loader is registered
// for the whole process (tsx/esm/api `register`) and the import retried. A process-wide
// loader rather than tsImport's namespaced one: the module must share this process's
// @dorafuse/core (its Tensor and HostTensor classes), not load a second copy.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CompileError } from "../errors.js";

let registered = false;

export async function importModule(file: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CompileError(`${file}: no such file`, file);
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if (registered || (error as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw error;
  }
  const { register } = await import("tsx/esm/api");
  register();
  registered = true;
  // a fresh URL: the failed attempt may be cached under the plain one
  return (await import(`${url}?dorafuse-compile`)) as Record<string, unknown>;
}
