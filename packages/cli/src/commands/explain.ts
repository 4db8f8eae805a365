// `dorafuse explain <file> --entry <name>`: traces the entry at its declared shapes, compiles
// it for the adapter of this machine (or WebGPU's default limits with --no-device), and prints
// the graph, the kernels and why each boundary is there, their WGSL, and the totals.
import { resolve } from "node:path";
import { createDevice } from "@dorafuse/runtime";
import { DEFAULT_TARGET, entryOf, explain, importModule, targetOf } from "@dorafuse/compiler";
import { checkArgs, type Command } from "./command.js";

const usage = `usage: dorafuse explain <file.ts> --entry <name> [--no-fusion] [--no-wgsl] [--no-device]

Traces the export <name> of <file.ts> (defineEntry(fn, specs) or { fn, specs }) and shows
what the compiler makes of it: the graph after the passes, each kernel with the nodes it
computes and the reason every tensor it reads had to be written to memory, the fusion
decisions, each kernel's WGSL, and the totals (kernels, dispatches per call, bytes read and
written, FLOPs, peak memory).
  --no-fusion   one kernel per primitive, for comparison
  --no-wgsl     leave the WGSL out
  --no-device   plan for WebGPU's default limits instead of this machine's adapter`;

const command: Command = {
  summary: "show the kernels, fusion boundaries, WGSL and totals of a traced function",
  usage,
  async run(args) {
    const a = checkArgs(args, { values: ["entry"], flags: ["no-fusion", "no-wgsl", "no-device"], expected: "one file and --entry <name>" });
    if ("error" in a) {
      console.error(`dorafuse explain: ${a.error}\n\n${usage}`);
      return 2;
    }
    const name = a.values.entry!;
    const options = a.flags;
    const file = resolve(a.file);
    const module = await importModule(file);
    const entry = entryOf(module, name, file);
    let target = DEFAULT_TARGET;
    if (!options.has("no-device")) {
      const device = await createDevice();
      target = targetOf(device);
      device.dispose();
    }
    const o = entry.options ?? {};
    console.log(
      explain(entry.fn, entry.specs, {
        ...o,
        target,
        fusion: !options.has("no-fusion") && o.fusion !== false,
        wgsl: !options.has("no-wgsl"),
      }),
    );
    return 0;
  },
};

export default command;
