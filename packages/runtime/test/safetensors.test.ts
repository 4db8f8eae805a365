import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  CheckpointError,
  gpuDType,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_DTYPES,
  SafetensorsError,
  serializeSafetensors,
  upload,
  writeSafetensors,
  type HostTensor,
  type SafetensorsDType,
} from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom, type SeededRandom } from "./random.js";

const gpu = useDevice();
const folders: string[] = [];
afterAll(() => folders.forEach((f) => rmSync(f, { recursive: true, force: true })));

function freshFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "dorafuse-safetensors-"));
  folders.push(folder);
  return folder;
}

/** A file of an 8-byte length, the header text as given, then `data`. */
function fileBytes(header: string | object, data: Uint8Array, length?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** Every way of reading `bytes` fails with a SafetensorsError matching `pattern`, and the folder is left as it was. */
async function expectBadFile(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const folder = freshFolder();
  const path = join(folder, "bad.safetensors");
  writeFileSync(path, bytes);
  const before = { names: readdirSync(folder), mtime: statSync(path).mtimeMs, size: statSync(path).size };
  for (const attempt of [() => readSafetensors(path), () => readSafetensorsHeader(path), async () => parseSafetensors(bytes, path)]) {
    const error = await attempt().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message.startsWith(path)).toBe(true);
  }
  expect(readdirSync(folder)).toEqual(before.names);
  expect(statSync(path).mtimeMs).toBe(before.mtime);
  expect(statSync(path).size).toBe(before.size);
}

const f32 = (n: number) => ({ dtype: "F32", shape: [n] });

describe("reading a malformed safetensors file fails with the file, key and offset, and writes nothing", () => {
  it("truncated inside the data section", async () => {
    const good = serializeSafetensors({ w: { dtype: "F32", shape: [4, 4], data: new Float32Array(16).fill(1.5) } });
    const cut = good.subarray(0, good.byteLength - 10);
    const dataStart = good.byteLength - 64;
    await expectBadFile(cut, new RegExp(`tensor "w": data_offsets \\[0, 64\\] reach file bytes ${dataStart}\\.\\.${dataStart + 64}, past the end of the file at byte ${cut.byteLength}: the file is truncated`));
  });

  it("too short to hold the header length", async () => {
    await expectBadFile(new Uint8Array([1, 2, 3, 4, 5]), /truncated: the file is 5 bytes, too short for the 8-byte header length at byte 0/);
  });

  it("a header length past the end of the file", async () => {
    const bytes = fileBytes({ w: { ...f32(1), data_offsets: [0, 4] } }, new Uint8Array(4), 1000n);
    await expectBadFile(bytes, new RegExp(`the header length 1000 \\(file bytes 0\\.\\.8\\) runs past the end of the file: the header would end at byte 1008, the file is ${bytes.byteLength} bytes`));
  });

  it("a header that is not JSON", async () => {
    const text = '{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "v": [}';
    const at = 8 + text.indexOf("[}") + 1;
    await expectBadFile(fileBytes(text, new Uint8Array(8)), new RegExp(`the header \\(file bytes 8\\.\\.${8 + text.length}\\) is not valid JSON at file byte ${at}: `));
    const unterminated = '{"w": {"dtype": "F32"';
    await expectBadFile(fileBytes(unterminated, new Uint8Array(0)), new RegExp(`is not valid JSON at file byte ${8 + unterminated.length}: `));
  });

  it("an unknown dtype", async () => {
    await expectBadFile(fileBytes({ w: { dtype: "Q4_K", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "w": unknown dtype "Q4_K" \(in the header at file bytes 8\.\.\d+\); known dtypes: BOOL, U8/);
  });

  it("offsets out of range", async () => {
    const header = { w: { ...f32(16), data_offsets: [0, 64] } };
    const bytes = fileBytes(header, new Uint8Array(8));
    const start = bytes.byteLength - 8;
    await expectBadFile(bytes, new RegExp(`tensor "w": data_offsets \\[0, 64\\] reach file bytes ${start}\\.\\.${start + 64}, past the end of the file at byte ${bytes.byteLength}: .*offsets are out of range`));
    await expectBadFile(fileBytes({ w: { ...f32(0), data_offsets: [8, 4] } }, new Uint8Array(8)), /tensor "w": data_offsets \[8, 4\] end before they begin/);
    await expectBadFile(fileBytes({ w: { ...f32(2), data_offsets: [0, -8] } }, new Uint8Array(8)), /tensor "w": data_offsets must be two non-negative integers \[begin, end\], found \[0,-8\]/);
  });

  it("overlapping tensors", async () => {
    const header = { a: { ...f32(2), data_offsets: [0, 8] }, b: { ...f32(2), data_offsets: [4, 12] } };
    const bytes = fileBytes(header, new Uint8Array(12));
    const start = bytes.byteLength - 12;
    await expectBadFile(bytes, new RegExp(`tensors "a" \\(data_offsets \\[0, 8\\]\\) and "b" \\(data_offsets \\[4, 12\\]\\) overlap at file bytes ${start + 4}\\.\\.${start + 8}`));
  });

  it("bytes that belong to no tensor", async () => {
    const bytes = fileBytes({ a: { ...f32(1), data_offsets: [4, 8] } }, new Uint8Array(8));
    await expectBadFile(bytes, /file bytes \d+\.\.\d+ belong to no tensor \(before tensor "a", data_offsets \[4, 8\]\)/);
    await expectBadFile(fileBytes({ a: { ...f32(1), data_offsets: [0, 4] } }, new Uint8Array(8)), /file bytes \d+\.\.\d+ after the last tensor belong to no tensor/);
  });

  it("a shape that disagrees with the byte length", async () => {
    const bytes = fileBytes({ w: { dtype: "F32", shape: [3, 1], data_offsets: [0, 8] } }, new Uint8Array(8));
    const start = bytes.byteLength - 8;
    await expectBadFile(bytes, new RegExp(`tensor "w": shape \\[3, 1\\] of F32 needs 12 bytes, but data_offsets \\[0, 8\\] span 8 bytes \\(file bytes ${start}\\.\\.${start + 8}\\)`));
  });

  it("metadata that is not a map of strings, and entries that are not objects", async () => {
    await expectBadFile(fileBytes({ __metadata__: { step: 3 } }, new Uint8Array(0)), /"__metadata__" must map strings to strings/);
    await expectBadFile(fileBytes({ w: [1, 2] }, new Uint8Array(0)), /tensor "w": expected an object \{ dtype, shape, data_offsets \}/);
    await expectBadFile(fileBytes("[1, 2]", new Uint8Array(0)), /the header \(file bytes 8\.\.14\) must start with "\{"/);
  });

  it("a missing file", async () => {
    const path = join(freshFolder(), "absent.safetensors");
    await expect(readSafetensors(path)).rejects.toThrow(new RegExp(`^${path}: cannot open it for reading: .*ENOENT`));
  });
});

function randomTensor(rng: SeededRandom, dtype: SafetensorsDType, shape: number[]): HostTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  const spec = SAFETENSORS_DTYPES[dtype];
  // Random bit patterns (NaN payloads and all), except BOOL, whose bytes are 0 or 1.
  const bytes = dtype === "BOOL" ? Uint8Array.from({ length: count }, () => (rng.next() < 0.5 ? 1 : 0)) : rng.bytes(count * spec.bytes);
  return { dtype, shape, data: new spec.array(bytes.buffer) as HostTensor["data"] };
}

const bitsOf = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe("writing safetensors", () => {
  it("round-trips every dtype bit for bit, with metadata", async () => {
    const rng = seededRandom();
    const tensors: Record<string, HostTensor> = {};
    for (const dtype of Object.keys(SAFETENSORS_DTYPES) as SafetensorsDType[]) tensors[`layer.${dtype.toLowerCase()}`] = randomTensor(rng, dtype, [rng.int(1, 4), rng.int(1, 6)]);
    tensors.scalar = randomTensor(rng, "F64", []);
    tensors.empty = randomTensor(rng, "F32", [0, 3]);
    const metadata = { format: "pt", step: "17", note: "ünïcödé" };
    const path = join(freshFolder(), "model.safetensors");
    await writeSafetensors(path, tensors, metadata);
    const back = await readSafetensors(path);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.tensors.get(name)!;
      expect([b.dtype, b.shape], name).toEqual([t.dtype, t.shape]);
      expect(b.data.constructor, name).toBe(t.data.constructor);
      expect(bitsOf(b).equals(bitsOf(t)), `${name}, ${rng.label}`).toBe(true);
    }
    // The in-memory form is the same bytes as the file.
    expect(Buffer.from(serializeSafetensors(tensors, metadata)).equals(readFileSync(path))).toBe(true);
  });

  it("lays the file out as the format asks: 8-byte header padding, aligned tensors, no gaps", async () => {
    const rng = seededRandom();
    const bytes = serializeSafetensors({ a: randomTensor(rng, "U8", [3]), b: randomTensor(rng, "F64", [2]), c: randomTensor(rng, "F16", [5]) });
    const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(length % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + length)).toString());
    expect(header.b.data_offsets).toEqual([0, 16]);
    expect(header.c.data_offsets).toEqual([16, 26]);
    expect(header.a.data_offsets).toEqual([26, 29]);
    expect(bytes.byteLength).toBe(8 + length + 29);
  });

  it("replaces an existing file atomically and leaves no temporary file", async () => {
    const rng = seededRandom();
    const folder = freshFolder();
    const path = join(folder, "ckpt.safetensors");
    await writeSafetensors(path, { w: randomTensor(rng, "F32", [4]) });
    const next = randomTensor(rng, "F32", [8]);
    await writeSafetensors(path, { w: next });
    expect(readdirSync(folder)).toEqual(["ckpt.safetensors"]);
    expect(bitsOf((await readSafetensors(path)).tensors.get("w")!).equals(bitsOf(next))).toBe(true);
  });

  it("refuses bad tensors before writing anything", async () => {
    const folder = freshFolder();
    const path = join(folder, "ckpt.safetensors");
    writeFileSync(path, serializeSafetensors({ keep: { dtype: "U8", shape: [1], data: new Uint8Array([7]) } }));
    const before = readFileSync(path);
    const cases: [Record<string, HostTensor>, RegExp][] = [
      [{ w: { dtype: "F32", shape: [3], data: new Float32Array(4) } }, /tensor "w": shape \[3\] holds 3 elements, its data 4/],
      [{ w: { dtype: "F32", shape: [2], data: new Float64Array(2) as unknown as Float32Array } }, /tensor "w": dtype F32 is held in a Float32Array, found a Float64Array/],
      [{ w: { dtype: "Q4" as SafetensorsDType, shape: [1], data: new Uint8Array(1) } }, /tensor "w": unknown dtype "Q4"/],
      [{ __metadata__: { dtype: "U8", shape: [1], data: new Uint8Array(1) } }, /tensor "__metadata__": the name is reserved/],
    ];
    for (const [tensors, pattern] of cases) {
      await expect(writeSafetensors(path, tensors)).rejects.toThrow(pattern);
      expect(readdirSync(folder)).toEqual(["ckpt.safetensors"]);
      expect(readFileSync(path).equals(before)).toBe(true);
    }
  });

  it("says which dtypes can go to the GPU, and those round-trip through it", async () => {
    const rng = seededRandom();
    const expected: Partial<Record<SafetensorsDType, string>> = { F32: "f32", F16: "f16", I32: "i32", U32: "u32", BOOL: "bool" };
    for (const dtype of Object.keys(SAFETENSORS_DTYPES) as SafetensorsDType[]) expect(gpuDType(dtype), dtype).toBe(expected[dtype]);
    for (const dtype of Object.keys(expected) as SafetensorsDType[]) {
      const t = randomTensor(rng, dtype, [3, 7]);
      const onGpu = upload(gpu.device, t.data, { dtype: gpuDType(dtype)!, shape: t.shape, name: dtype });
      const back = await onGpu.read();
      expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(bitsOf(t)), `${dtype}, ${rng.label}`).toBe(true);
      onGpu.dispose();
    }
  });
});
