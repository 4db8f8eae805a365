// GPU buffers: creating them within the device's limits while counting what is alive,
// writing bytes into them, and reading bytes back through a mapped staging buffer.

import type { Device } from "./device.js";
import { align4 } from "./dtypes.js";
import { BufferError, DeviceError } from "./errors.js";

export interface MemoryStats {
  /** Buffers created and not yet destroyed (including those resting in the pool). */
  liveBuffers: number;
  liveBytes: number;
  /** The most bytes alive at once since the device was created. */
  peakBytes: number;
  /** Of the live ones, those resting in the pool for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
}

/** Creates and destroys buffers for one device, counting them, and remembers which are gone. */
export class BufferAllocator {
  readonly #device: Device;
  readonly #live = new Map<GPUBuffer, number>();
  readonly #destroyed = new WeakSet<GPUBuffer>();
  #liveBytes = 0;
  #peakBytes = 0;

  constructor(device: Device) {
    this.#device = device;
  }

  /** A new buffer; a size past the device's maxBufferSize is a BufferError naming both sizes and `purpose`. */
  create(size: number, usage: GPUBufferUsageFlags, label: string, purpose = label): GPUBuffer {
    this.#device.check();
    const max = this.#device.limits.maxBufferSize!;
    if (!Number.isSafeInteger(size) || size <= 0) throw new BufferError(`buffer "${purpose}": size must be a positive whole number of bytes, found ${size}`);
    if (size > max) {
      throw new BufferError(
        `buffer "${purpose}" needs ${size} bytes, more than this device's maxBufferSize of ${max} bytes (adapter ${this.#device.describe()}); split the tensor or use a smaller batch`,
      );
    }
    const buffer = this.#device.gpu.createBuffer({ size: align4(size), usage, label });
    this.#live.set(buffer, buffer.size);
    this.#liveBytes += buffer.size;
    this.#peakBytes = Math.max(this.#peakBytes, this.#liveBytes);
    return buffer;
  }

  destroy(buffer: GPUBuffer): void {
    const size = this.#live.get(buffer);
    if (size === undefined) return;
    this.#live.delete(buffer);
    this.#liveBytes -= size;
    this.#destroyed.add(buffer);
    buffer.destroy();
  }

  isDestroyed(buffer: GPUBuffer): boolean {
    return this.#destroyed.has(buffer);
  }

  stats(): Omit<MemoryStats, "pooledBuffers" | "pooledBytes"> {
    return { liveBuffers: this.#live.size, liveBytes: this.#liveBytes, peakBytes: this.#peakBytes };
  }
}

/**
 * Queues a write of `bytes` at `offset`. WebGPU writes whole 4-byte words, so an odd tail
 * (an f16 tensor of odd length) is padded with zeros; plan offsets are aligned, so the pad
 * never reaches another tensor.
 */
export function writeBytes(device: Device, buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
  device.check();
  if (device.buffers.isDestroyed(buffer)) throw new BufferError(`cannot write ${bytes.byteLength} bytes into buffer "${buffer.label}": it was destroyed`);
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(align4(bytes.byteLength));
    padded.set(bytes);
    bytes = padded;
  }
  device.gpu.queue.writeBuffer(buffer, offset, bytes);
}

/**
 * Reads `size` bytes at `offset` of `buffer` back to the host: a copy into a pooled staging
 * buffer in its own submit, then mapAsync. `what` names the data in error messages.
 */
export async function readBytes(device: Device, buffer: GPUBuffer, offset: number, size: number, what: string): Promise<ArrayBuffer> {
  device.check();
  if (device.buffers.isDestroyed(buffer)) throw new BufferError(`cannot read ${what}: its GPU buffer was destroyed`);
  const padded = align4(size);
  if (offset % 4 !== 0) throw new BufferError(`cannot read ${what}: offset ${offset} is not a multiple of 4`);
  if (offset + padded > buffer.size) throw new BufferError(`cannot read ${what}: bytes ${offset}..${offset + padded} lie past the end of buffer "${buffer.label}" (${buffer.size} bytes)`);
  const staging = device.pool.acquire(padded, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, "read-back");
  let mapped = false;
  try {
    await device.scoped(
      () => {
        const encoder = device.gpu.createCommandEncoder({ label: `read ${what}` });
        encoder.copyBufferToBuffer(buffer, offset, staging, 0, padded);
        device.gpu.queue.submit([encoder.finish()]);
      },
      (kind, message) =>
        /destroyed/i.test(message)
          ? new BufferError(`cannot read ${what}: its GPU buffer was destroyed.\nDawn said: ${message}`)
          : new DeviceError(`reading ${what} failed (${kind} error): ${message}`),
    );
    try {
      await device.whenAlive(staging.mapAsync(GPUMapMode.READ, 0, padded));
    } catch (error) {
      if (error instanceof DeviceError) throw error;
      throw new DeviceError(`reading ${what} was aborted while waiting for the GPU (${(error as Error).name}): the device was lost or destroyed`);
    }
    mapped = true;
    return staging.getMappedRange(0, padded).slice(0, size);
  } finally {
    if (mapped) staging.unmap();
    if (!device.lost) device.pool.release(staging);
  }
}
