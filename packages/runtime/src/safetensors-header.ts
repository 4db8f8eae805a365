// The safetensors layout: an 8-byte little-endian header length N, N bytes of JSON
// ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }),
// then the data section, which the tensors tile exactly: no overlaps, no gaps, no slack.
// Every check here names the file, the key and the byte offset (in the file) it is about.

import { SafetensorsError } from "./errors.js";
import type { PlanDType } from "./plan.js";

/** The byte-sized dtypes of the format (sub-byte F4/F6 are not supported). */
export const SAFETENSORS_DTYPES = {
  BOOL: { bytes: 1, array: Uint8Array, gpu: "bool" },
  U8: { bytes: 1, array: Uint8Array },
  I8: { bytes: 1, array: Int8Array },
  F8_E5M2: { bytes: 1, array: Uint8Array },
  F8_E4M3: { bytes: 1, array: Uint8Array },
  F8_E8M0: { bytes: 1, array: Uint8Array },
  I16: { bytes: 2, array: Int16Array },
  U16: { bytes: 2, array: Uint16Array },
  F16: { bytes: 2, array: Uint16Array, gpu: "f16" },
  BF16: { bytes: 2, array: Uint16Array },
  I32: { bytes: 4, array: Int32Array, gpu: "i32" },
  U32: { bytes: 4, array: Uint32Array, gpu: "u32" },
  F32: { bytes: 4, array: Float32Array, gpu: "f32" },
  F64: { bytes: 8, array: Float64Array },
  I64: { bytes: 8, array: BigInt64Array },
  U64: { bytes: 8, array: BigUint64Array },
} as const satisfies Record<string, { bytes: number; array: unknown; gpu?: PlanDType }>;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPES;

/** What a tensor of each dtype is held in on the host: raw bits for F16, BF16 and the F8 kinds (the `array` column above). */
interface HostArrays {
  BOOL: Uint8Array;
  U8: Uint8Array;
  I8: Int8Array;
  F8_E5M2: Uint8Array;
  F8_E4M3: Uint8Array;
  F8_E8M0: Uint8Array;
  I16: Int16Array;
  U16: Uint16Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I32: Int32Array;
  U32: Uint32Array;
  F32: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
}

export type SafetensorsArrayOf<D extends SafetensorsDType> = HostArrays[D];
export type SafetensorsArray = SafetensorsArrayOf<SafetensorsDType>;

/** The plan dtype a safetensors dtype uploads as, or undefined when WebGPU cannot hold it. */
export function gpuDType(dtype: SafetensorsDType): PlanDType | undefined {
  const spec = SAFETENSORS_DTYPES[dtype] as { gpu?: PlanDType };
  return spec.gpu;
}

export function isSafetensorsDType(dtype: unknown): dtype is SafetensorsDType {
  return typeof dtype === "string" && Object.hasOwn(SAFETENSORS_DTYPES, dtype);
}

/** One tensor's entry in the header, with its bytes located in the file. */
export interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Offsets within the data section, as written in the header. */
  dataOffsets: [number, number];
  /** Absolute byte offsets in the file. */
  fileStart: number;
  fileEnd: number;
}

export interface SafetensorsHeader {
  entries: HeaderEntry[];
  metadata: Record<string, string>;
  /** File offset where the data section starts (8 + header length). */
  dataStart: number;
}

/** Header JSON above this size is refused, as the reference implementation does. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

export const LENGTH_BYTES = 8;

/** The header length from the first 8 bytes, checked against the file size. */
export function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < LENGTH_BYTES || prefix.byteLength < LENGTH_BYTES) {
    throw new SafetensorsError(`${source}: truncated: the file is ${fileSize} bytes, too short for the 8-byte header length at byte 0`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, LENGTH_BYTES).getBigUint64(0, true);
  if (length > BigInt(fileSize - LENGTH_BYTES)) {
    throw new SafetensorsError(
      `${source}: the header length ${length} (file bytes 0..8) runs past the end of the file: the header would end at byte ${BigInt(LENGTH_BYTES) + length}, the file is ${fileSize} bytes`,
    );
  }
  if (length > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${source}: the header length ${length} (file bytes 0..8) is more than the ${MAX_HEADER_BYTES} bytes allowed`);
  if (length < 2n) throw new SafetensorsError(`${source}: the header length ${length} (file bytes 0..8) is too short for a JSON object`);
  return Number(length);
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  const where = `the header (file bytes ${LENGTH_BYTES}..${LENGTH_BYTES + bytes.byteLength})`;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${source}: ${where} is not valid UTF-8`);
  }
  if (!text.startsWith("{")) throw new SafetensorsError(`${source}: ${where} must start with "{", found ${JSON.stringify(text.slice(0, 8))} at byte ${LENGTH_BYTES}`);
  try {
    return JSON.parse(text);
  } catch (error) {
    const at = LENGTH_BYTES + Buffer.byteLength(text.slice(0, jsonErrorIndex(text)));
    throw new SafetensorsError(`${source}: ${where} is not valid JSON at file byte ${at}: ${(error as Error).message}`);
  }
}

const NUMBER_OR_LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/** Where `text` stops being JSON. Node's JSON.parse does not always say, and a byte offset is what a reader of the file needs. */
function jsonErrorIndex(text: string): number {
  let i = 0;
  const stop = (): never => {
    throw i;
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const string = () => {
    if (text[i] !== '"') stop();
    for (i++; text[i] !== '"'; i++) {
      if (i >= text.length || text.charCodeAt(i) < 0x20) stop();
      if (text[i] === "\\") i++;
    }
    i++;
  };
  const sequence = (close: string, item: () => void) => {
    i++;
    space();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      space();
      if (text[i] === close) return void i++;
      if (text[i] !== ",") stop();
      i++;
    }
  };
  const value = (): void => {
    space();
    if (text[i] === "{") {
      return sequence("}", () => {
        space();
        string();
        space();
        if (text[i] !== ":") stop();
        i++;
        value();
      });
    }
    if (text[i] === "[") return sequence("]", value);
    if (text[i] === '"') return string();
    NUMBER_OR_LITERAL.lastIndex = i;
    if (!NUMBER_OR_LITERAL.test(text)) stop();
    i = NUMBER_OR_LITERAL.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) stop();
  } catch (at) {
    if (typeof at === "number") return at;
    throw at;
  }
  return i;
}

const isOffset = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

function parseEntry(name: string, value: unknown, dataStart: number, source: string): HeaderEntry {
  const where = `${source}: tensor "${name}"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SafetensorsError(`${where}: expected an object { dtype, shape, data_offsets }, found ${JSON.stringify(value)}`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isSafetensorsDType(dtype)) {
    throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(dtype)} (in the header at file bytes ${LENGTH_BYTES}..${dataStart}); known dtypes: ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`);
  }
  if (!Array.isArray(shape) || !shape.every(isOffset)) throw new SafetensorsError(`${where}: shape must be a list of non-negative integers, found ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isOffset)) {
    throw new SafetensorsError(`${where}: data_offsets must be two non-negative integers [begin, end], found ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] end before they begin (file bytes ${dataStart + begin}..${dataStart + end})`);
  const need = shape.reduce((a: number, b: number) => a * b, 1) * SAFETENSORS_DTYPES[dtype].bytes;
  if (need !== end - begin) {
    throw new SafetensorsError(
      `${where}: shape [${shape.join(", ")}] of ${dtype} needs ${need} bytes, but data_offsets [${begin}, ${end}] span ${end - begin} bytes (file bytes ${dataStart + begin}..${dataStart + end})`,
    );
  }
  return { name, dtype, shape: shape as number[], dataOffsets: [begin, end], fileStart: dataStart + begin, fileEnd: dataStart + end };
}

/** Parses and checks the header JSON; `fileSize` bounds every tensor's bytes. */
export function parseHeader(json: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  const dataStart = LENGTH_BYTES + json.byteLength;
  const root = parseJson(json, source);
  if (typeof root !== "object" || root === null || Array.isArray(root)) throw new SafetensorsError(`${source}: the header must be a JSON object, found ${JSON.stringify(root)?.slice(0, 40)}`);
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
        throw new SafetensorsError(`${source}: "__metadata__" must map strings to strings, found ${JSON.stringify(value)?.slice(0, 80)}`);
      }
      metadata = { ...(value as Record<string, string>) };
      continue;
    }
    entries.push(parseEntry(name, value, dataStart, source));
  }
  const dataLength = fileSize - dataStart;
  for (const e of entries) {
    if (e.dataOffsets[1] > dataLength) {
      throw new SafetensorsError(
        `${source}: tensor "${e.name}": data_offsets [${e.dataOffsets.join(", ")}] reach file bytes ${e.fileStart}..${e.fileEnd}, past the end of the file at byte ${fileSize}: the file is truncated or the offsets are out of range`,
      );
    }
  }
  checkTiling(entries, dataLength, dataStart, source);
  return { entries, metadata, dataStart };
}

/** The tensors must cover the data section exactly once, as the reference implementation requires. */
function checkTiling(entries: readonly HeaderEntry[], dataLength: number, dataStart: number, source: string): void {
  const sorted = [...entries].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let previous: HeaderEntry | undefined;
  for (const e of sorted) {
    const [begin, end] = e.dataOffsets;
    if (begin < covered && previous) {
      throw new SafetensorsError(
        `${source}: tensors "${previous.name}" (data_offsets [${previous.dataOffsets.join(", ")}]) and "${e.name}" (data_offsets [${begin}, ${end}]) overlap at file bytes ${dataStart + begin}..${dataStart + Math.min(covered, end)}`,
      );
    }
    if (begin > covered) {
      throw new SafetensorsError(`${source}: file bytes ${dataStart + covered}..${dataStart + begin} belong to no tensor (before tensor "${e.name}", data_offsets [${begin}, ${end}])`);
    }
    if (end > covered || !previous) previous = e;
    covered = Math.max(covered, end);
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(`${source}: file bytes ${dataStart + covered}..${dataStart + dataLength} after the last tensor belong to no tensor`);
  }
}

/** The header bytes for tensors laid out in `entries` order, padded with spaces to 8 bytes. */
export function encodeHeader(entries: readonly Omit<HeaderEntry, "fileStart" | "fileEnd">[], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  for (const e of entries) header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: e.dataOffsets };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(LENGTH_BYTES + padded).fill(0x20, LENGTH_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, LENGTH_BYTES);
  return out;
}
