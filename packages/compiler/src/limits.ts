// The adapter limits and features a plan is built against. They come from the device the
// plan will run on (`limitsOf(device)`); tests pass artificially low values to exercise the
// paths that large graphs take on small adapters (binding packing, split dispatches).
import { availableParallelism } from "node:os";
import { CompileError } from "./errors.js";

export interface KernelLimits {
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupStorageSize: number;
  minStorageBufferOffsetAlignment: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export interface Target {
  limits: KernelLimits;
  /** The adapter has `shader-f16`: f16 tensors are stored and computed as WGSL f16. */
  f16: boolean;
  /** Identifies the adapter in cache keys (vendor/architecture/device). */
  adapter: string;
  /**
   * Workgroups the adapter runs at once, roughly: what the matmul cost model keeps busy.
   * A CPU adapter (lavapipe, SwiftShader) runs one per core; a GPU dozens.
   */
  parallelism: number;
}

/** WebGPU's default limits: what every adapter offers. */
export const DEFAULT_LIMITS: KernelLimits = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupStorageSize: 16384,
  minStorageBufferOffsetAlignment: 256,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
};

export const DEFAULT_TARGET: Target = { limits: DEFAULT_LIMITS, f16: false, adapter: "webgpu-defaults", parallelism: 64 };

const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|cpu/i;

const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof KernelLimits)[];

interface AdapterDescription {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
}

/** Anything with WebGPU-style `limits` and `features` (a GPUDevice, or the runtime's device). */
export interface DeviceLike {
  limits: unknown;
  features: { has(name: string): boolean } | ReadonlySet<string>;
  /** The runtime's Device names it `adapter`, a GPUDevice `adapterInfo`. */
  adapter?: AdapterDescription;
  adapterInfo?: AdapterDescription;
}

/** The target of a device: its limits, whether it has shader-f16, and a name for cache keys. */
export function targetOf(device: DeviceLike, overrides: Partial<KernelLimits> = {}): Target {
  const src = device.limits as Record<string, number>;
  const limits = { ...DEFAULT_LIMITS };
  for (const k of LIMIT_KEYS) if (typeof src[k] === "number") limits[k] = src[k];
  const info = device.adapter ?? device.adapterInfo;
  const adapter = info ? [info.vendor, info.architecture, info.device || info.description].filter(Boolean).join("/") : "device";
  const cpu = CPU_ADAPTER.test(`${adapter} ${info?.description ?? ""}`);
  const parallelism = cpu ? availableParallelism() : 64;
  return withLimits({ limits, f16: device.features.has("shader-f16"), adapter, parallelism }, overrides);
}

/** The target with some limits lowered (never raised above what the adapter has). */
export function withLimits(target: Target, overrides: Partial<KernelLimits>): Target {
  const limits = { ...target.limits };
  for (const k of LIMIT_KEYS) {
    const v = overrides[k];
    if (v === undefined) continue;
    const alignment = k === "minStorageBufferOffsetAlignment";
    if (!Number.isInteger(v) || v <= 0 || (alignment ? v < limits[k] : v > limits[k])) {
      const bound = alignment ? `≥ ${limits[k]}` : `≤ ${limits[k]}`;
      throw new CompileError(`limit ${k}: expected a positive integer ${bound} (the adapter's), found ${v}`, "compile options");
    }
    limits[k] = v;
  }
  if (limits.maxStorageBuffersPerShaderStage < 4) {
    throw new CompileError(`limit maxStorageBuffersPerShaderStage: expected at least 4 (one per buffer role), found ${limits.maxStorageBuffersPerShaderStage}`, "compile options");
  }
  return { ...target, limits };
}
