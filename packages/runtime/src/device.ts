// A Dawn device with the adapter's own limits and optional features, what it reports about
// itself, and the two guards every runtime call goes through: a lost (or disposed) device
// rejects instead of hanging, and WebGPU errors come back through error scopes as typed errors.

import { findAdapter, type AdapterOptions } from "./adapters.js";
import { BufferAllocator, type MemoryStats } from "./buffers.js";
import { DeviceError } from "./errors.js";
import { PipelineCache } from "./pipelines.js";
import { BufferPool } from "./pool.js";

/** Optional features worth having when the adapter offers them. */
export const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ["shader-f16", "timestamp-query", "subgroups"];

export interface DeviceOptions extends AdapterOptions {
  /** Optional features to request where the adapter has them. Default OPTIONAL_FEATURES. */
  features?: readonly GPUFeatureName[];
  label?: string;
}

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Dawn backend, e.g. "vulkan"; "unknown" when Dawn's listing does not say. */
  backend: string;
  isFallbackAdapter: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** The Dawn instance options that found this adapter. */
  instanceOptions: string[];
}

export type ErrorKind = "validation" | "out-of-memory" | "internal";

/** Turns a WebGPU error caught by a scope into one of the runtime's typed errors. */
export type ErrorWrapper = (kind: ErrorKind, message: string) => Error;

export class Device {
  readonly gpu: GPUDevice;
  readonly adapter: AdapterInfo;
  /** The device's limits: the adapter's own, all of them. */
  readonly limits: Readonly<Record<string, number>>;
  readonly features: ReadonlySet<string>;
  readonly buffers: BufferAllocator;
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  // Dawn tears the adapter and device down once its instance is unreachable.
  readonly #instance: GPU;
  #gone: string | null = null;
  #disposed = false;
  readonly #whenLost: Promise<never>;
  readonly #uncaptured: string[] = [];

  constructor(instance: GPU, gpu: GPUDevice, adapter: AdapterInfo) {
    this.#instance = instance;
    this.gpu = gpu;
    this.adapter = adapter;
    const limits: Record<string, number> = {};
    for (const key in gpu.limits) {
      const value = (gpu.limits as unknown as Record<string, unknown>)[key];
      if (typeof value === "number") limits[key] = value;
    }
    this.limits = Object.freeze(limits);
    this.features = new Set(gpu.features);
    this.#whenLost = gpu.lost.then((info) => {
      this.#gone = this.#disposed
        ? "the device was disposed (dispose() was called); create a new one with createDevice()"
        : `the GPU device was lost (reason "${info.reason}"${info.message ? `: ${info.message.trim()}` : ""}); nothing more can run on it, create a new one with createDevice()`;
      throw new DeviceError(this.#gone);
    });
    this.#whenLost.catch(() => {});
    gpu.addEventListener("uncapturederror", (event) => {
      // Keep Dawn from printing it; the next runtime call reports it instead.
      event.preventDefault();
      this.#uncaptured.push((event as GPUUncapturedErrorEvent).error.message);
    });
    this.buffers = new BufferAllocator(this);
    this.pool = new BufferPool(this.buffers);
    this.pipelines = new PipelineCache(this);
  }

  get lost(): boolean {
    return this.#gone !== null || this.#disposed;
  }

  /** Throws the DeviceError every call on a lost or disposed device gets, or one for an unscoped WebGPU error. */
  check(): void {
    if (this.#disposed) throw new DeviceError("the device was disposed (dispose() was called); create a new one with createDevice()");
    if (this.#gone) throw new DeviceError(this.#gone);
    const earlier = this.#uncaptured.splice(0);
    if (earlier.length) throw new DeviceError(`an earlier WebGPU call on this device failed outside the runtime's error scopes: ${earlier.join("\n")}`);
  }

  /** `promise`, or a DeviceError as soon as the device is lost: nothing waits forever on a dead device. */
  whenAlive<T>(promise: Promise<T>): Promise<T> {
    this.check();
    return Promise.race([promise, this.#whenLost]);
  }

  /**
   * Runs `work` (synchronous WebGPU calls) inside validation, out-of-memory and internal
   * error scopes and throws what they caught, wrapped by `wrap`. The scopes are pushed and
   * popped in the same tick, so concurrent callers cannot interleave with them.
   */
  async scoped<T>(work: () => T, wrap: ErrorWrapper): Promise<T> {
    this.check();
    const kinds: ErrorKind[] = ["internal", "out-of-memory", "validation"];
    for (const kind of kinds) this.gpu.pushErrorScope(kind);
    let result: T;
    let thrown: unknown;
    try {
      result = work();
    } catch (error) {
      thrown = error;
    }
    const pops = kinds
      .slice()
      .reverse()
      .map((kind) => this.gpu.popErrorScope().then((error) => (error ? { kind, message: error.message } : null)));
    const caught = (await this.whenAlive(Promise.all(pops))).filter((e) => e !== null);
    if (thrown !== undefined) throw thrown;
    if (caught.length) throw wrap(caught[0]!.kind, caught.map((e) => e.message.trim()).join("\n"));
    return result!;
  }

  /** Buffers, bytes and pool occupancy right now. */
  get memory(): MemoryStats {
    return { ...this.buffers.stats(), pooledBuffers: this.pool.pooledBuffers, pooledBytes: this.pool.pooledBytes };
  }

  /** Destroys the device (and with it every buffer), so the Node process can exit. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.pool.clear();
    this.pipelines.clear();
    this.gpu.destroy();
  }

  /** A one-line summary, e.g. for logs. */
  describe(): string {
    return `${this.adapter.description || this.adapter.device} (${this.adapter.backend})`;
  }

  /** The Dawn instance this device came from. */
  get instance(): GPU {
    return this.#instance;
  }
}

/**
 * Creates a device on the best adapter Dawn finds (or the one chosen by options or
 * DORAFUSE_BACKEND / DORAFUSE_ADAPTER), with all the adapter's limits and its optional features.
 */
export async function createDevice(options: DeviceOptions = {}): Promise<Device> {
  const found = await findAdapter(options);
  const { adapter } = found;
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") requiredLimits[key] = value;
  }
  const requiredFeatures = (options.features ?? OPTIONAL_FEATURES).filter((f) => adapter.features.has(f));
  let gpu: GPUDevice;
  try {
    gpu = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: options.label ?? "dorafuse" });
  } catch (error) {
    throw new DeviceError(
      `adapter "${adapter.info.description || adapter.info.device}" refused a device with its own limits and features [${requiredFeatures.join(", ")}]: ${(error as Error).message}`,
    );
  }
  const info = adapter.info;
  return new Device(found.instance, gpu, {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    backend: found.backend,
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    ...(info.subgroupMinSize !== undefined ? { subgroupMinSize: info.subgroupMinSize, subgroupMaxSize: info.subgroupMaxSize } : {}),
    instanceOptions: found.instanceOptions,
  });
}
