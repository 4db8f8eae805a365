// `dorafuse compile <module.ts> --entry <name> --out <dir>`: ahead-of-time compilation of a
// training step, an evaluation step or a function into a typed module that runs with
// @dorafuse/runtime alone (see aot/compile-module.ts for what it writes).
import { relative } from "node:path";
import { compileModule, fmtBytes } from "@dorafuse/compiler";
import { checkArgs, type Command } from "./command.js";

const usage = `usage: dorafuse compile <module.ts> --entry <name> --out <dir> [--no-device] [--no-fusion]

Imports <module.ts>, traces its export <name> at the shapes it declares —
defineTrainStep(loss, optimizer, { params, batch, … }), defineEvalStep(loss, { params, batch })
or defineEntry(fn, specs) — compiles it, and writes
  <dir>/<name>.ts                   a typed module: load(device) → the step or function
  <dir>/<name>/manifest.json        the plan, graph fingerprint, compiler version, adapter limits
  <dir>/<name>/*.wgsl               the kernels
  <dir>/<name>/initial.safetensors  the initial state, when the entry gives values
The module imports @dorafuse/runtime only, and refuses to load on an adapter below the limits
the plan needs.
  --no-device   compile for WebGPU's default limits (loads on any adapter) instead of this machine's
  --no-fusion   one kernel per primitive`;

const command: Command = {
  summary: "compile a training step or function ahead of time into a typed module",
  usage,
  async run(args) {
    const a = checkArgs(args, { values: ["entry", "out"], flags: ["no-device", "no-fusion"], expected: "one module, --entry <name> and --out <dir>" });
    if ("error" in a) {
      console.error(`dorafuse compile: ${a.error}\n\n${usage}`);
      return 2;
    }
    const { entry, out } = a.values as { entry: string; out: string };
    const started = performance.now();
    const r = await compileModule({ file: a.file, entry, out, portable: a.flags.has("no-device"), ...(a.flags.has("no-fusion") ? { fusion: false } : {}) });
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const here = (p: string) => relative(process.cwd(), p) || p;
    const m = r.data;
    console.log(`compiled ${m.kind} "${m.entry}" in ${seconds} s (${m.compiler}, graph ${m.fingerprint}, for "${m.compiledFor.adapter}")`);
    console.log(`  ${r.totals.kernels} kernels, ${r.totals.dispatches} dispatches per call, peak memory ${fmtBytes(r.totals.peakBytes)}`);
    console.log(`  needs ${Object.entries(m.requires.limits).map(([k, v]) => `${k} ${v}`).join(", ")}${m.requires.features.length ? `; features ${m.requires.features.join(", ")}` : ""}`);
    console.log(`wrote ${here(r.module)}`);
    console.log(`      ${here(r.manifest)} and ${r.wgsl.length} WGSL files${r.initial ? `, ${here(r.initial)}` : ""}`);
    return 0;
  },
};

export default command;
