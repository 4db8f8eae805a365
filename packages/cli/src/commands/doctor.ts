// `dorafuse doctor`: the adapter, its limits and features, and measured bandwidth and GFLOP/s.

import { doctor, formatDoctorReport } from "@dorafuse/runtime";
import { parseArgs, type Command } from "./command.js";

const usage = `usage: dorafuse doctor [--json] [--backend NAME] [--adapter NAME] [--power high-performance|low-power]
                      [--copy-mib N] [--matmul N] [--repeats N]

Shows the WebGPU adapter Dawn picks (or the one chosen by --backend / --adapter, also
DORAFUSE_BACKEND / DORAFUSE_ADAPTER), its limits and features, then runs a copy kernel and a
tiled f32 matmul, checks their results and prints the median GB/s and GFLOP/s.
  --json        print the whole report (every limit) as JSON
  --copy-mib N  MiB the copy kernel moves (default 16)
  --matmul N    size of the N x N x N matmul (default 384)
  --repeats N   timed runs per kernel (default 5)`;

function positiveNumber(options: Map<string, string | true>, name: string): number | undefined {
  const raw = options.get(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw === true || !Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number, found ${raw === true ? "nothing" : JSON.stringify(raw)}`);
  return value;
}

const command: Command = {
  summary: "show the WebGPU adapter and measure its bandwidth and GFLOP/s",
  usage,
  async run(args) {
    const { positional, options } = parseArgs(args);
    const known = new Set(["json", "backend", "adapter", "power", "copy-mib", "matmul", "repeats"]);
    const unknown = [...options.keys()].filter((k) => !known.has(k));
    if (positional.length || unknown.length) {
      console.error(`dorafuse doctor: unexpected ${[...positional, ...unknown.map((k) => `--${k}`)].join(" ")}\n\n${usage}`);
      return 2;
    }
    const text = (name: string) => {
      const v = options.get(name);
      return typeof v === "string" ? v : undefined;
    };
    const power = text("power");
    if (power !== undefined && power !== "high-performance" && power !== "low-power") throw new Error(`--power must be high-performance or low-power, found "${power}"`);
    const copyMiB = positiveNumber(options, "copy-mib");
    const matmulSize = positiveNumber(options, "matmul");
    const repeats = positiveNumber(options, "repeats");
    const report = await doctor({
      ...(text("backend") ? { backend: text("backend") } : {}),
      ...(text("adapter") ? { adapter: text("adapter") } : {}),
      ...(power ? { powerPreference: power } : {}),
      ...(copyMiB ? { copyBytes: Math.round(copyMiB * 2 ** 20) } : {}),
      ...(matmulSize ? { matmulSize: Math.max(1, Math.round(matmulSize)) } : {}),
      ...(repeats ? { repeats: Math.max(1, Math.round(repeats)) } : {}),
    });
    console.log(options.has("json") ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
    return 0;
  },
};

export default command;
