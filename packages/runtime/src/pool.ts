// A size-bucketed pool of GPU buffers, so per-run outputs and read-back staging buffers are
// reused instead of created and destroyed every step. Sizes round up to one of four classes
// per power of two (at most 25% waste); the pool keeps at most `maxPooledBytes` idle.

import type { BufferAllocator } from "./buffers.js";

const MIN_BUCKET = 256;

/** The size class a request of `size` bytes is served from. */
export function bucketSize(size: number): number {
  if (size <= MIN_BUCKET) return MIN_BUCKET;
  const power = 2 ** Math.floor(Math.log2(size - 1));
  const step = power / 4;
  return Math.ceil(size / step) * step;
}

export class BufferPool {
  readonly #allocator: BufferAllocator;
  readonly #idle = new Map<string, GPUBuffer[]>();
  readonly #handedOut = new WeakSet<GPUBuffer>();
  #pooledBuffers = 0;
  #pooledBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    allocator: BufferAllocator,
    readonly maxPooledBytes = 256 * 2 ** 20,
  ) {
    this.#allocator = allocator;
  }

  /**
   * A buffer of at least `size` bytes with exactly `usage`, reused when one of its class is
   * idle. `label` names the request in errors; the buffer's own label stays generic, since
   * it will serve other requests later.
   */
  acquire(size: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const bucket = bucketSize(size);
    const idle = this.#idle.get(`${usage}:${bucket}`);
    const reused = idle?.pop();
    let buffer: GPUBuffer;
    if (reused) {
      this.hits++;
      this.#pooledBuffers--;
      this.#pooledBytes -= reused.size;
      buffer = reused;
    } else {
      this.misses++;
      buffer = this.#allocator.create(bucket, usage, `pooled ${bucket} bytes`, label);
    }
    this.#handedOut.add(buffer);
    return buffer;
  }

  /** Gives a buffer from acquire() back; past the byte cap it is destroyed instead. */
  release(buffer: GPUBuffer): void {
    if (!this.#handedOut.has(buffer) || this.#allocator.isDestroyed(buffer)) return;
    this.#handedOut.delete(buffer);
    if (this.#pooledBytes + buffer.size > this.maxPooledBytes) {
      this.#allocator.destroy(buffer);
      return;
    }
    const key = `${buffer.usage}:${buffer.size}`;
    let idle = this.#idle.get(key);
    if (!idle) this.#idle.set(key, (idle = []));
    idle.push(buffer);
    this.#pooledBuffers++;
    this.#pooledBytes += buffer.size;
  }

  /** Destroys every idle buffer. */
  clear(): void {
    for (const idle of this.#idle.values()) for (const buffer of idle) this.#allocator.destroy(buffer);
    this.#idle.clear();
    this.#pooledBuffers = 0;
    this.#pooledBytes = 0;
  }

  get pooledBuffers(): number {
    return this.#pooledBuffers;
  }

  get pooledBytes(): number {
    return this.#pooledBytes;
  }
}
