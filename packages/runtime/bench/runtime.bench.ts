// Runtime benchmark: dispatch overhead, copy bandwidth and tiled-matmul GFLOP/s, measured
// side by side in one run and printed as medians with ratios.
//   node scripts/bench.mjs packages/runtime/bench/runtime.bench.ts [--quick]
// Plans here keep every tensor as GPU-resident state, so runs time the GPU work and the
// runtime's encoding, not uploads or output copies.

import { copyPlan, createDevice, kernelPlan, loadPlan, matmulPlan, type Device, type ExecutionPlan, type MatmulTile } from "@dorafuse/runtime";

const quick = process.argv.includes("--quick");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Every input and output of `plan` becomes state: nothing crosses to or from the host per run. */
function resident(plan: ExecutionPlan): ExecutionPlan {
  return { ...plan, state: [...plan.inputs, ...plan.outputs], inputs: [], outputs: [] };
}

async function settle(device: Device): Promise<void> {
  await device.whenAlive(device.gpu.queue.onSubmittedWorkDone());
}

/** Median wall-clock milliseconds of `body` followed by GPU completion, after one warm-up. */
async function wallMs(device: Device, repeats: number, body: () => Promise<unknown>): Promise<number> {
  await body();
  await settle(device);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await body();
    await settle(device);
    times.push(performance.now() - start);
  }
  return median(times);
}

const rows: string[][] = [];
const row = (...cells: (string | number)[]) => rows.push(cells.map(String));
const fixed = (n: number, digits = 2) => n.toFixed(digits);

const EMPTY_WGSL = "@compute @workgroup_size(1)\nfn main() {}\n";

function emptyPlan(dispatches: number): ExecutionPlan {
  const plan = kernelPlan({ name: "empty", wgsl: EMPTY_WGSL, workgroupSize: [1, 1, 1], workgroups: [1, 1, 1], tensors: [] });
  plan.steps = Array.from({ length: dispatches }, () => plan.steps[0]!);
  return plan;
}

async function dispatchOverhead(device: Device): Promise<void> {
  const batch = quick ? 500 : 2000;
  const singles = quick ? 200 : 1000;
  const batched = await loadPlan(device, emptyPlan(batch));
  const single = await loadPlan(device, emptyPlan(1));
  const perBatched = (await wallMs(device, 5, () => batched.run({}))) / batch;
  const perPipelined = (await wallMs(device, 5, async () => {
    for (let i = 0; i < singles; i++) await single.run({});
  })) / singles;
  const perRoundTrip = (await wallMs(device, 5, async () => {
    for (let i = 0; i < singles / 4; i++) {
      await single.run({});
      await settle(device);
    }
  })) / (singles / 4);
  // The same single dispatch through raw WebGPU: what the runtime's checks and error scopes add.
  const { pipeline } = await device.pipelines.pipeline({ name: "empty", wgsl: EMPTY_WGSL, entryPoint: "main", bindings: [] });
  const perRaw = (await wallMs(device, 5, async () => {
    for (let i = 0; i < singles; i++) {
      const encoder = device.gpu.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.dispatchWorkgroups(1);
      pass.end();
      device.gpu.queue.submit([encoder.finish()]);
    }
  })) / singles;
  const us = (ms: number) => fixed(ms * 1000, 1);
  row("dispatch overhead (empty kernel)", "µs per dispatch", "vs batched");
  row(`  ${batch} dispatches in one command buffer`, us(perBatched), "1.00");
  row("  one dispatch per run(), runs pipelined", us(perPipelined), fixed(perPipelined / perBatched));
  row("  raw WebGPU, one dispatch per submit", us(perRaw), fixed(perRaw / perBatched));
  row("  one run() and wait for the GPU, each", us(perRoundTrip), fixed(perRoundTrip / perBatched));
  batched.dispose();
  single.dispose();
}

async function copyBandwidth(device: Device): Promise<void> {
  row("copy bandwidth", "GB/s (read + write)", "vs copyBufferToBuffer");
  for (const mib of quick ? [16] : [4, 16, 64]) {
    const floats = (mib * 2 ** 20) / 4;
    const bytes = floats * 4;
    const kernel = await loadPlan(device, resident(copyPlan(floats)));
    await kernel.writeState("src", Float32Array.from({ length: floats }, (_, i) => i));
    const timestamps: number[] = [];
    await kernel.run({}, { profile: true });
    for (let i = 0; i < 7; i++) timestamps.push((await kernel.run({}, { profile: true })).profile!.totalNs / 1e6);
    const kernelWall = await wallMs(device, 7, () => kernel.run({}));
    const builtin = copyPlan(floats);
    builtin.kernels = [];
    builtin.steps = [{ kind: "copy", src: { buffer: 0, offset: 0, size: bytes }, dst: { buffer: 1, offset: 0, size: bytes } }];
    const copier = await loadPlan(device, resident(builtin));
    const builtinWall = await wallMs(device, 7, () => copier.run({}));
    const gbps = (ms: number) => (2 * bytes) / (ms * 1e6);
    row(`  ${mib} MiB copy kernel, GPU timestamps`, fixed(gbps(median(timestamps))), fixed(builtinWall / median(timestamps)));
    row(`  ${mib} MiB copy kernel, wall clock`, fixed(gbps(kernelWall)), fixed(builtinWall / kernelWall));
    row(`  ${mib} MiB copyBufferToBuffer, wall clock`, fixed(gbps(builtinWall)), "1.00");
    kernel.dispose();
    copier.dispose();
  }
}

const TILES: [string, MatmulTile][] = [
  ["64x64x16, 8x8 each (default)", { m: 64, n: 64, k: 16, threadM: 8, threadN: 8 }],
  ["32x32x16, 4x4 each", { m: 32, n: 32, k: 16, threadM: 4, threadN: 4 }],
  ["16x16x16, 1x1 each", { m: 16, n: 16, k: 16, threadM: 1, threadN: 1 }],
];

async function matmul(device: Device): Promise<void> {
  row("tiled f32 matmul (GPU timestamps)", "GFLOP/s", "vs default tile");
  for (const size of quick ? [256] : [256, 512, 1024]) {
    const repeats = size >= 1024 ? 3 : 5;
    const data = Float32Array.from({ length: size * size }, () => Math.random() * 2 - 1);
    let reference = 0;
    for (const [name, tile] of TILES) {
      const exe = await loadPlan(device, resident(matmulPlan(size, size, size, tile)));
      await exe.writeState("a", data);
      await exe.writeState("b", data);
      await exe.run({}, { profile: true });
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) times.push((await exe.run({}, { profile: true })).profile!.totalNs / 1e6);
      const gflops = (2 * size ** 3) / (median(times) * 1e6);
      reference ||= gflops;
      row(`  ${size}³, tile ${name}`, fixed(gflops), fixed(gflops / reference));
      exe.dispose();
    }
  }
}

const device = await createDevice();
const started = performance.now();
await dispatchOverhead(device);
await copyBandwidth(device);
if (device.features.has("timestamp-query")) await matmul(device);
else row("tiled f32 matmul", "skipped: the adapter has no timestamp-query", "");
device.dispose();

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]?.length ?? 0)));
console.log(`@dorafuse/runtime benchmark on ${device.describe()}, medians${quick ? " (--quick)" : ""}\n`);
for (const r of rows) {
  const header = !r[0]!.startsWith("  ");
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("   "));
  if (header) console.log("-".repeat(widths.reduce((a, w) => a + w + 3, -3)));
}
console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`);
