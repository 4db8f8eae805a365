// GPU time per dispatch through `timestamp-query`: when profiling, each dispatch gets its own
// compute pass whose `timestampWrites` record the pass's start and end; the query sets are
// resolved at the end of the same command buffer and read back afterwards.

import { readBytes } from "./buffers.js";
import type { Device } from "./device.js";
import { DeviceError } from "./errors.js";

export interface StepTiming {
  /** Index of the step in plan.steps. */
  step: number;
  kernel: string;
  label?: string;
  /** GPU nanoseconds between the start and end of the dispatch's pass. */
  ns: number;
}

export interface Profile {
  steps: StepTiming[];
  /** Sum of the steps' durations. */
  totalNs: number;
}

/** WebGPU caps a query set at 4096 queries: two per dispatch. */
const DISPATCHES_PER_SET = 2048;

export class Profiler {
  readonly #device: Device;
  readonly #sets: GPUQuerySet[] = [];
  readonly #resolve: GPUBuffer[] = [];
  readonly dispatches: number;

  constructor(device: Device, dispatches: number) {
    if (!device.features.has("timestamp-query")) {
      throw new DeviceError(
        `profiling needs the "timestamp-query" feature, which adapter ${device.describe()} does not offer (features: ${[...device.features].join(", ") || "none"})`,
      );
    }
    this.#device = device;
    this.dispatches = dispatches;
    for (let first = 0; first < dispatches; first += DISPATCHES_PER_SET) {
      const count = 2 * Math.min(DISPATCHES_PER_SET, dispatches - first);
      this.#sets.push(device.gpu.createQuerySet({ type: "timestamp", count, label: "dorafuse profile" }));
      this.#resolve.push(device.buffers.create(count * 8, GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, "profile timestamps"));
    }
  }

  /** The timestampWrites for the pass of the `i`th dispatch. */
  timestampWrites(i: number): GPUComputePassTimestampWrites {
    const local = i % DISPATCHES_PER_SET;
    return { querySet: this.#sets[Math.floor(i / DISPATCHES_PER_SET)]!, beginningOfPassWriteIndex: 2 * local, endOfPassWriteIndex: 2 * local + 1 };
  }

  /** Encodes the resolve of every query into the resolve buffers, at the end of a run's commands. */
  resolve(encoder: GPUCommandEncoder): void {
    this.#sets.forEach((set, i) => encoder.resolveQuerySet(set, 0, set.count, this.#resolve[i]!, 0));
  }

  /** Reads the resolved timestamps; `steps[i]` describes the `i`th dispatch. */
  async read(steps: readonly Omit<StepTiming, "ns">[]): Promise<Profile> {
    const stamps: bigint[] = [];
    for (const buffer of this.#resolve) {
      const bytes = await readBytes(this.#device, buffer, 0, buffer.size, "profile timestamps");
      stamps.push(...new BigUint64Array(bytes));
    }
    const timings = steps.map((s, i) => {
      const ns = Number(stamps[2 * i + 1]! - stamps[2 * i]!);
      return { ...s, ns: Math.max(0, ns) };
    });
    return { steps: timings, totalNs: timings.reduce((a, t) => a + t.ns, 0) };
  }

  dispose(): void {
    for (const set of this.#sets) set.destroy();
    for (const buffer of this.#resolve) this.#device.buffers.destroy(buffer);
  }
}
