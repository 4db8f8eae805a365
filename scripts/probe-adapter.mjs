#!/usr/bin/env node
// Prints the adapter Dawn offers as one JSON line, or exits 1 with Dawn's message.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// `webgpu` is a dependency of @dorafuse/runtime, so resolve it from there.
const runtimePkg = join(dirname(fileURLToPath(import.meta.url)), "..", "packages", "runtime", "package.json");
const { create, globals } = await import(pathToFileURL(createRequire(runtimePkg).resolve("webgpu")).href);

Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  process.stderr.write("requestAdapter() returned null\n");
  process.exit(1);
}
const info = adapter.info;
console.log(JSON.stringify({ vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description }));
process.exit(0);
