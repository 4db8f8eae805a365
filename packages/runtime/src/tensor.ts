// A GPU-resident tensor: a typed view of a range of a GPU buffer. Reading it back is
// explicit and asynchronous. A tensor either owns a pooled buffer (uploads, run outputs;
// dispose() or garbage collection returns it to the pool) or views a buffer it does not
// own (a plan's state).

import { readBytes, writeBytes } from "./buffers.js";
import type { Device } from "./device.js";
import { describeHostArray, elementCount, fromGpuBytes, gpuByteSize, isHostArrayOf, toGpuBytes, type HostArrayOf } from "./dtypes.js";
import { BufferError } from "./errors.js";
import type { PlanDType } from "./plan.js";

/** Usage of every buffer the runtime makes for tensors: bindable as storage, copyable both ways. */
export function tensorUsage(): GPUBufferUsageFlags {
  // A function, not a constant: the WebGPU globals exist only once adapters.ts installed them.
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

// Owned buffers of tensors dropped without dispose() go back to their pool when collected.
const unreleased = new FinalizationRegistry<{ device: Device; buffer: GPUBuffer }>(({ device, buffer }) => {
  if (!device.lost) device.pool.release(buffer);
});

export class Tensor<D extends PlanDType = PlanDType> {
  readonly device: Device;
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly dtype: D;
  readonly name: string;
  readonly #owned: boolean;
  #disposed = false;

  constructor(device: Device, buffer: GPUBuffer, offset: number, shape: readonly number[], dtype: D, name: string, owned: boolean) {
    this.device = device;
    this.buffer = buffer;
    this.offset = offset;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.name = name;
    this.#owned = owned;
    if (owned) unreleased.register(this, { device, buffer }, this);
  }

  /** Number of elements. */
  get size(): number {
    return elementCount(this.shape);
  }

  /** Bytes it occupies in GPU memory. */
  get byteLength(): number {
    return this.size * gpuByteSize(this.dtype);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Copies the tensor back to the host (bool → Uint8Array, f16 → half bits in a Uint16Array). */
  async read(): Promise<HostArrayOf[D]> {
    if (this.#disposed) throw new BufferError(`cannot read tensor "${this.name}" ${this.describe()}: it was disposed`);
    if (this.size === 0) {
      this.device.check();
      return fromGpuBytes(this.dtype, new ArrayBuffer(0), 0);
    }
    const bytes = await readBytes(this.device, this.buffer, this.offset, this.byteLength, `tensor "${this.name}" ${this.describe()}`);
    return fromGpuBytes(this.dtype, bytes, this.size);
  }

  /** Overwrites the tensor's contents (queued, ordered before the next submitted work). */
  write(data: HostArrayOf[D]): void {
    if (this.#disposed) throw new BufferError(`cannot write tensor "${this.name}" ${this.describe()}: it was disposed`);
    checkHostData(this.name, this.dtype, this.shape, data);
    writeBytes(this.device, this.buffer, this.offset, toGpuBytes(this.dtype, data));
  }

  /** Returns an owned buffer to the pool. Reading afterwards is a BufferError. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#owned) {
      unreleased.unregister(this);
      if (!this.device.lost) this.device.pool.release(this.buffer);
    }
  }

  describe(): string {
    return `${this.dtype}[${this.shape.join(",")}]`;
  }
}

/** Throws a BufferError unless `data` is the host form of `dtype` with the shape's element count. */
export function checkHostData(name: string, dtype: PlanDType, shape: readonly number[], data: ArrayBufferView): void {
  if (!isHostArrayOf(dtype, data)) {
    throw new BufferError(`tensor "${name}" is ${dtype}[${shape.join(",")}]: expected a ${describeHostArray(dtype)}, found a ${data.constructor.name}`);
  }
  const count = elementCount(shape);
  const found = (data as unknown as ArrayLike<number>).length;
  if (found !== count) throw new BufferError(`tensor "${name}" is ${dtype}[${shape.join(",")}]: expected ${count} elements, found ${found}`);
}

export interface UploadOptions<D extends PlanDType> {
  dtype?: D;
  /** Default: one dimension, the data's length. */
  shape?: readonly number[];
  name?: string;
}

function inferDType(data: ArrayBufferView): PlanDType {
  if (data instanceof Float32Array) return "f32";
  if (data instanceof Int32Array) return "i32";
  if (data instanceof Uint32Array) return "u32";
  if (data instanceof Uint16Array) return "f16";
  if (data instanceof Uint8Array) return "bool";
  throw new BufferError(`cannot upload a ${data.constructor.name}: expected Float32Array, Int32Array, Uint32Array, Uint16Array (f16 bits) or Uint8Array (bool)`);
}

/** Copies host data into a new pooled GPU buffer and returns it as a tensor. */
export function upload<D extends PlanDType = PlanDType>(device: Device, data: ArrayBufferView, options: UploadOptions<D> = {}): Tensor<D> {
  const dtype = (options.dtype ?? inferDType(data)) as D;
  const name = options.name ?? "upload";
  const shape = options.shape ?? [(data as unknown as ArrayLike<number>).length];
  checkHostData(name, dtype, shape, data);
  const bytes = Math.max(4, elementCount(shape) * gpuByteSize(dtype));
  const buffer = device.pool.acquire(bytes, tensorUsage(), name);
  const tensor = new Tensor(device, buffer, 0, shape, dtype, name, true);
  writeBytes(device, buffer, 0, toGpuBytes(dtype, data));
  return tensor;
}

/** A new pooled tensor whose contents are undefined until something writes it. */
export function allocateTensor<D extends PlanDType>(device: Device, shape: readonly number[], dtype: D, name: string): Tensor<D> {
  const bytes = Math.max(4, elementCount(shape) * gpuByteSize(dtype));
  return new Tensor(device, device.pool.acquire(bytes, tensorUsage(), name), 0, shape, dtype, name, true);
}
