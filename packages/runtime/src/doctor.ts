// `dorafuse doctor`: what this machine's WebGPU adapter is and what it gives. Reports the
// adapter, backend, limits and features, then runs the copy kernel and the tiled matmul
// through loadPlan/run, checks their results against the CPU and reports the median
// bandwidth and GFLOP/s.

import { createDevice, type AdapterInfo, type Device, type DeviceOptions } from "./device.js";
import type { MemoryStats } from "./buffers.js";
import { copyPlan } from "./kernels/copy.js";
import { matmulPlan } from "./kernels/matmul.js";
import type { Executable, TensorInput } from "./executable.js";
import { loadPlan } from "./executable.js";

export interface DoctorOptions extends DeviceOptions {
  /** Use this device instead of creating (and disposing) one. */
  device?: Device;
  /** Bytes the copy kernel moves from source to destination. Default 16 MiB. */
  copyBytes?: number;
  /** m = k = n of the matmul. Default 384. */
  matmulSize?: number;
  /** Timed runs of each kernel after one warm-up run; the median is reported. Default 5. */
  repeats?: number;
}

export interface Measurement {
  /** Median time of one run of the kernel. */
  medianMs: number;
  /** How it was timed: the GPU's timestamps around the dispatch, or wall clock around submit and completion. */
  timing: "gpu timestamps" | "wall clock";
  runs: number;
}

export interface DoctorReport {
  adapter: AdapterInfo;
  limits: Record<string, number>;
  features: string[];
  copy: Measurement & { bytes: number; gbps: number };
  matmul: Measurement & { m: number; k: number; n: number; gflops: number; maxRelError: number };
  memory: MemoryStats;
  elapsedMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Runs `exe` once to warm up, then `repeats` times, returning the median milliseconds and the last outputs' reader. */
async function measure(device: Device, exe: Executable, inputs: Record<string, TensorInput>, repeats: number) {
  const profile = device.features.has("timestamp-query");
  const times: number[] = [];
  let last = await exe.run(inputs, { profile });
  for (let i = 0; i < repeats; i++) {
    for (const t of Object.values(last.outputs)) t.dispose();
    const start = performance.now();
    last = await exe.run(inputs, { profile });
    if (profile) {
      times.push(last.profile!.totalNs / 1e6);
    } else {
      await device.whenAlive(device.gpu.queue.onSubmittedWorkDone());
      times.push(performance.now() - start);
    }
  }
  const measurement: Measurement = { medianMs: median(times), timing: profile ? "gpu timestamps" : "wall clock", runs: repeats };
  return { measurement, outputs: last };
}

function random(count: number): Float32Array {
  return Float32Array.from({ length: count }, () => Math.random() * 2 - 1);
}

export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const started = performance.now();
  const device = options.device ?? (await createDevice(options));
  try {
    const repeats = options.repeats ?? 5;
    const floats = Math.max(4, Math.floor((options.copyBytes ?? 16 * 2 ** 20) / 16) * 4);
    const copy = await loadPlan(device, copyPlan(floats));
    const src = random(floats);
    const copied = await measure(device, copy, { src }, repeats);
    const dst = (await copied.outputs.readAll()).dst as Float32Array;
    const mismatch = dst.findIndex((v, i) => v !== src[i]);
    if (mismatch >= 0) throw new Error(`doctor: the copy kernel wrote ${dst[mismatch]} at element ${mismatch}, expected ${src[mismatch]}: this adapter computes wrong results`);
    copy.dispose();

    const size = options.matmulSize ?? 384;
    const matmul = await loadPlan(device, matmulPlan(size, size, size));
    const a = random(size * size);
    const b = random(size * size);
    const multiplied = await measure(device, matmul, { a, b }, repeats);
    const c = (await multiplied.outputs.readAll()).c as Float32Array;
    matmul.dispose();
    const maxRelError = checkMatmulRows(a, b, c, size);
    if (!(maxRelError < 1e-4)) throw new Error(`doctor: the matmul kernel's result is off by a relative ${maxRelError} from the CPU's: this adapter computes wrong results`);

    return {
      adapter: device.adapter,
      limits: { ...device.limits },
      features: [...device.features].sort(),
      copy: { ...copied.measurement, bytes: floats * 4, gbps: (2 * floats * 4) / (copied.measurement.medianMs * 1e6) },
      matmul: { ...multiplied.measurement, m: size, k: size, n: size, gflops: (2 * size ** 3) / (multiplied.measurement.medianMs * 1e6), maxRelError },
      memory: device.memory,
      elapsedMs: performance.now() - started,
    };
  } finally {
    if (!options.device) device.dispose();
  }
}

/** Largest relative error (‖row − ref‖ / ‖ref‖) over up to 16 evenly spread rows, against float64. */
function checkMatmulRows(a: Float32Array, b: Float32Array, c: Float32Array, size: number): number {
  let worst = 0;
  const step = Math.max(1, Math.floor(size / 16));
  for (let row = 0; row < size; row += step) {
    let err = 0;
    let ref = 0;
    for (let col = 0; col < size; col++) {
      let sum = 0;
      for (let p = 0; p < size; p++) sum += a[row * size + p]! * b[p * size + col]!;
      err += (sum - c[row * size + col]!) ** 2;
      ref += sum * sum;
    }
    worst = Math.max(worst, Math.sqrt(err / ref));
  }
  return worst;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);

/** The report as the CLI prints it. */
export function formatDoctorReport(report: DoctorReport): string {
  const { adapter } = report;
  const keyLimits = [
    "maxBufferSize",
    "maxStorageBufferBindingSize",
    "maxStorageBuffersPerShaderStage",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupsPerDimension",
    "minStorageBufferOffsetAlignment",
  ];
  const lines = [
    "dorafuse doctor",
    `  adapter    ${adapter.description || adapter.device}`,
    `  vendor     ${adapter.vendor} (${adapter.architecture || "?"})${adapter.isFallbackAdapter ? ", software fallback" : ""}`,
    `  backend    ${adapter.backend}`,
    `  features   ${report.features.join(", ") || "none"}`,
    "  limits",
    ...keyLimits.filter((k) => k in report.limits).map((k) => `    ${k.padEnd(36)} ${report.limits[k]}`),
    `    (${Object.keys(report.limits).length - keyLimits.length} more: dorafuse doctor --json prints them all)`,
    "  measured   (median of " + report.copy.runs + " runs, " + report.copy.timing + ")",
    `    copy     ${fmt(report.copy.bytes / 2 ** 20, 0)} MiB           ${fmt(report.copy.medianMs, 3).padStart(9)} ms   ${fmt(report.copy.gbps).padStart(8)} GB/s`,
    `    matmul   ${report.matmul.m}x${report.matmul.k}x${report.matmul.n} f32   ${fmt(report.matmul.medianMs, 3).padStart(9)} ms   ${fmt(report.matmul.gflops).padStart(8)} GFLOP/s`,
    `  results checked against the CPU (matmul max relative error ${report.matmul.maxRelError.toExponential(1)})`,
    `  done in ${fmt(report.elapsedMs / 1000, 1)} s`,
  ];
  return lines.join("\n");
}
