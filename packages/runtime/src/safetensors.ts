// Reading and writing safetensors files. Reading checks the whole header (safetensors-header.ts)
// before touching any data and never writes anything; writing checks every tensor first, then
// writes a temporary file in the same folder, fsyncs it and renames it into place, so a crash
// mid-write leaves the previous file intact.
//
// dtypes: every byte-sized dtype of the format is read into a JS typed array (F16, BF16 and
// the F8 kinds as raw bits). F32, F16, I32, U32 and BOOL can go to the GPU (gpuDType), with
// the same host arrays `upload` takes; BOOL is one byte per element here and in the file, a
// u32 per element on the GPU.

import { randomBytes } from "node:crypto";
import { endianness } from "node:os";
import { open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SafetensorsError } from "./errors.js";
import {
  encodeHeader,
  headerLength,
  LENGTH_BYTES,
  parseHeader,
  SAFETENSORS_DTYPES,
  isSafetensorsDType,
  type HeaderEntry,
  type SafetensorsArray,
  type SafetensorsDType,
  type SafetensorsHeader,
} from "./safetensors-header.js";

export { gpuDType, SAFETENSORS_DTYPES, type SafetensorsArray, type SafetensorsArrayOf, type SafetensorsDType, type SafetensorsHeader, type HeaderEntry } from "./safetensors-header.js";

export interface HostTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: SafetensorsArray;
}

export interface Safetensors {
  /** Tensors in the order of their bytes in the file. */
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

function requireLittleEndian(): void {
  // Typed arrays use the host's byte order; the format is little-endian.
  if (endianness() !== "LE") throw new SafetensorsError("safetensors needs a little-endian host");
}

function tensorOf(entry: HeaderEntry, bytes: Uint8Array): HostTensor {
  // A typed array needs its own, aligned buffer: take the bytes' buffer when they fill it
  // (a fresh read), else copy (a slice of a whole file in memory).
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  // Uint8Array's slice copies; a Node Buffer's own slice is a view of the whole pool
  const own = whole ? (bytes.buffer as ArrayBuffer) : Uint8Array.prototype.slice.call(bytes).buffer;
  const Array = SAFETENSORS_DTYPES[entry.dtype].array;
  return { dtype: entry.dtype, shape: entry.shape, data: new Array(own) as SafetensorsArray };
}

function byFileOrder(header: SafetensorsHeader): HeaderEntry[] {
  return [...header.entries].sort((a, b) => a.fileStart - b.fileStart);
}

/** Parses safetensors bytes held in memory; `source` names them in errors. */
export function parseSafetensors(bytes: Uint8Array, source = "<bytes>"): Safetensors {
  requireLittleEndian();
  const length = headerLength(bytes.subarray(0, LENGTH_BYTES), bytes.byteLength, source);
  const header = parseHeader(bytes.subarray(LENGTH_BYTES, LENGTH_BYTES + length), bytes.byteLength, source);
  const tensors = new Map<string, HostTensor>();
  for (const e of byFileOrder(header)) tensors.set(e.name, tensorOf(e, bytes.subarray(e.fileStart, e.fileEnd)));
  return { tensors, metadata: header.metadata };
}

async function openForReading(path: string) {
  try {
    return await open(path, "r");
  } catch (error) {
    throw new SafetensorsError(`${path}: cannot open it for reading: ${(error as Error).message}`);
  }
}

async function readExactly(file: FileHandle, position: number, length: number, path: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(bytes, done, length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(`${path}: truncated: expected ${length} bytes at file byte ${position}, the file ended at byte ${position + done}`);
    done += bytesRead;
  }
  return bytes;
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function readHeaderFrom(file: FileHandle, path: string): Promise<SafetensorsHeader> {
  requireLittleEndian();
  const size = (await file.stat()).size;
  const prefix = await readExactly(file, 0, Math.min(LENGTH_BYTES, size), path);
  const length = headerLength(prefix, size, path);
  return parseHeader(await readExactly(file, LENGTH_BYTES, length, path), size, path);
}

/** Reads and checks only the header of a file: names, dtypes, shapes and where each tensor lies. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const file = await openForReading(path);
  try {
    return await readHeaderFrom(file, path);
  } finally {
    await file.close();
  }
}

/** Reads a whole file: the header is checked completely before any tensor data is read. */
export async function readSafetensors(path: string): Promise<Safetensors> {
  const file = await openForReading(path);
  try {
    const header = await readHeaderFrom(file, path);
    const tensors = new Map<string, HostTensor>();
    for (const e of byFileOrder(header)) tensors.set(e.name, tensorOf(e, await readExactly(file, e.fileStart, e.fileEnd - e.fileStart, path)));
    return { tensors, metadata: header.metadata };
  } finally {
    await file.close();
  }
}

/**
 * The header of a file, and its tensors read one at a time in file order: a model of any size
 * goes through memory one tensor at a time (the caller converts, uploads and drops each).
 */
export async function streamSafetensors(path: string): Promise<{ header: SafetensorsHeader; tensors: AsyncGenerator<{ name: string; tensor: HostTensor }> }> {
  const file = await openForReading(path);
  let header: SafetensorsHeader;
  try {
    header = await readHeaderFrom(file, path);
  } catch (error) {
    await file.close();
    throw error;
  }
  async function* tensors() {
    try {
      for (const e of byFileOrder(header)) yield { name: e.name, tensor: tensorOf(e, await readExactly(file, e.fileStart, e.fileEnd - e.fileStart, path)) };
    } finally {
      await file.close();
    }
  }
  return { header, tensors: tensors() };
}

/** Named tensors, as a Map or a plain record. */
export type TensorsIn = Map<string, HostTensor> | Record<string, HostTensor>;

interface Planned {
  entries: Omit<HeaderEntry, "fileStart" | "fileEnd">[];
  data: Uint8Array[];
  header: Uint8Array;
}

/** Checks every tensor and lays the file out; throws before anything is written. */
function planFile(tensors: TensorsIn, metadata: Record<string, string>, target: string): Planned {
  requireLittleEndian();
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") throw new SafetensorsError(`${target}: metadata "${key}" must be a string, found ${typeof value}`);
  }
  const checked = list.map(([name, t]) => {
    const where = `${target}: tensor "${name}"`;
    if (name === "" || name === "__metadata__") throw new SafetensorsError(`${where}: the name is reserved or empty`);
    if (!isSafetensorsDType(t.dtype)) throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(t.dtype)}; known dtypes: ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`);
    const spec = SAFETENSORS_DTYPES[t.dtype];
    if (!(t.data instanceof spec.array)) throw new SafetensorsError(`${where}: dtype ${t.dtype} is held in a ${spec.array.name}, found a ${t.data?.constructor?.name}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new SafetensorsError(`${where}: shape [${t.shape.join(", ")}] must hold non-negative integers`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new SafetensorsError(`${where}: shape [${t.shape.join(", ")}] holds ${count} elements, its data ${t.data.length}`);
    let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (t.dtype === "BOOL") bytes = bytes.map((b) => (b ? 1 : 0));
    return { name, dtype: t.dtype, shape: [...t.shape], bytes, size: spec.bytes };
  });
  // Widest elements first keeps every tensor naturally aligned in the data section.
  checked.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  const entries = checked.map((c) => {
    const entry = { name: c.name, dtype: c.dtype, shape: c.shape, dataOffsets: [offset, offset + c.bytes.byteLength] as [number, number] };
    offset += c.bytes.byteLength;
    return entry;
  });
  return { entries, data: checked.map((c) => c.bytes), header: encodeHeader(entries, metadata) };
}

/** The bytes of a safetensors file holding `tensors`. */
export function serializeSafetensors(tensors: TensorsIn, metadata: Record<string, string> = {}): Uint8Array {
  const { header, data } = planFile(tensors, metadata, "<bytes>");
  const out = new Uint8Array(header.byteLength + data.reduce((a, d) => a + d.byteLength, 0));
  out.set(header);
  let at = header.byteLength;
  for (const d of data) {
    out.set(d, at);
    at += d.byteLength;
  }
  return out;
}

export interface WriteOptions {
  /**
   * Called once the temporary file is complete and fsync'd, just before it is renamed over
   * the target: the one moment a crash must not matter. Tests use it to simulate one; if it
   * throws, the write fails like any other and the temporary file is removed.
   */
  beforeRename?: (temporary: string) => void | Promise<void>;
}

/** `.<name>.<pid>.<8 hex>.tmp` beside the target: the writer's pid says whether it can still be running. */
const temporaryOf = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
const TEMPORARY_TAIL = /^(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Writes atomically: a temporary file beside `path`, fsync'd, renamed over it, then the folder
 * fsync'd. Temporaries that writers of the same path left behind when they died before their
 * rename are never read, and are removed after the next successful write.
 */
export async function writeSafetensors(path: string, tensors: TensorsIn, metadata: Record<string, string> = {}, options: WriteOptions = {}): Promise<void> {
  const { header, data } = planFile(tensors, metadata, path);
  await writeFileAtomically(path, [header, ...data], options);
}

/** The atomic write behind writeSafetensors, for any bytes (PEFT's adapter_config.json uses it too). */
export async function writeFileAtomically(path: string, chunks: readonly Uint8Array[], options: WriteOptions = {}): Promise<void> {
  const temporary = temporaryOf(path);
  let file: FileHandle | undefined;
  try {
    file = await open(temporary, "wx", 0o644);
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.byteLength) done += (await file.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    }
    await file.sync();
    await file.close();
    file = undefined;
    await options.beforeRename?.(temporary);
    await rename(temporary, path);
  } catch (error) {
    await file?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw new SafetensorsError(`${path}: writing failed, the previous file (if any) is untouched: ${(error as Error).message}`);
  }
  await syncFolder(dirname(path));
  await removeStaleTemporaries(path);
}

/** Deletes temporaries of `path` whose writer process is gone (a crash between write and rename). */
async function removeStaleTemporaries(path: string): Promise<void> {
  const folder = dirname(path);
  const prefix = `.${basename(path)}.`;
  const names = await readdir(folder).catch(() => [] as string[]);
  for (const name of names) {
    const pid = name.startsWith(prefix) ? TEMPORARY_TAIL.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid !== undefined && !processAlive(Number(pid))) await unlink(join(folder, name)).catch(() => {});
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else, so its write may still be under way.
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Makes the rename durable; some platforms cannot fsync a folder, which only weakens durability. */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Not fatal: the data itself is on disk.
  }
}
