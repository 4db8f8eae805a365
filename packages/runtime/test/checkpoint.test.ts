import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  captureState,
  CheckpointError,
  kernelPlan,
  loadCheckpoint,
  loadPlan,
  restoreState,
  saveCheckpoint,
  stateSpec,
  writeSafetensors,
  type HostTensor,
  type SafetensorsArray,
} from "@dorafuse/runtime";
import { useDevice } from "./device-fixture.js";
import { seededRandom, type SeededRandom } from "./random.js";

const gpu = useDevice();
const folders: string[] = [];
afterAll(() => folders.forEach((f) => rmSync(f, { recursive: true, force: true })));

function freshFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "dorafuse-checkpoint-"));
  folders.push(folder);
  return folder;
}

const bitsOf = (data: ArrayBufferView) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** Random bit patterns of `count` 4-byte words, with float32 specials planted at the front. */
function f32Bits(rng: SeededRandom, count: number): Float32Array {
  const words = new Uint32Array(rng.bytes(count * 4).buffer);
  // quiet NaN with a payload, negative signalling NaN with a payload, -0, +0, -inf, the smallest subnormal
  const specials = [0x7fc00001, 0xffa00abc, 0x80000000, 0x00000000, 0xff800000, 0x00000001];
  specials.forEach((w, i) => i < count && (words[i] = w));
  return new Float32Array(words.buffer);
}

function randomTensors(rng: SeededRandom): Record<string, HostTensor> {
  return {
    "blocks.0.attn.q.w": { dtype: "F32", shape: [6, 5], data: f32Bits(rng, 30) },
    "blocks.0.attn.q.loraA": { dtype: "F32", shape: [2, 5], data: f32Bits(rng, 10) },
    "opt.mu.blocks.0.attn.q.loraA": { dtype: "F16", shape: [2, 5], data: new Uint16Array(rng.bytes(20).buffer) },
    "opt.count": { dtype: "I32", shape: [], data: new Int32Array(rng.bytes(4).buffer) },
    "data.cursor": { dtype: "U32", shape: [3], data: new Uint32Array(rng.bytes(12).buffer) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
}

function expectSameTensors(actual: Record<string, HostTensor>, expected: Record<string, HostTensor>, label: string): void {
  expect(Object.keys(actual).sort(), label).toEqual(Object.keys(expected).sort());
  for (const [name, t] of Object.entries(expected)) {
    const a = actual[name]!;
    expect([a.dtype, a.shape], `${name}, ${label}`).toEqual([t.dtype, t.shape]);
    expect(a.data.constructor, `${name}, ${label}`).toBe(t.data.constructor);
    expect(bitsOf(a.data).equals(bitsOf(t.data)), `${name} bit for bit, ${label}`).toBe(true);
  }
}

describe("checkpoints", () => {
  it("round-trip tensors bit for bit (NaN payloads, -0, f16, i32, u32) with the step and random key exact", async () => {
    const rng = seededRandom();
    const path = join(freshFolder(), "step.safetensors");
    const tensors = randomTensors(rng);
    const rngKey = Uint32Array.of(0xffffffff, rng.int(0, 2 ** 32));
    await saveCheckpoint(path, { tensors, step: Number.MAX_SAFE_INTEGER, rngKey, metadata: { run: "ünïcödé", note: "" } });
    const back = await loadCheckpoint(path);
    expectSameTensors(back.tensors, tensors, rng.label);
    expect(back.step).toBe(Number.MAX_SAFE_INTEGER);
    expect(back.rngKey).toBeInstanceOf(Uint32Array);
    expect(Array.from(back.rngKey!), rng.label).toEqual(Array.from(rngKey));
    expect(back.metadata).toEqual({ run: "ünïcödé", note: "" });
    expect(back.path).toBe(path);

    // A key given as plain numbers, and no key at all.
    await saveCheckpoint(path, { tensors: {}, step: 0, rngKey: [0, 42] });
    expect(Array.from((await loadCheckpoint(path)).rngKey!)).toEqual([0, 42]);
    await saveCheckpoint(path, { tensors: {}, step: 7 });
    const bare = await loadCheckpoint(path);
    expect([bare.step, bare.rngKey, bare.metadata, bare.tensors]).toEqual([7, undefined, {}, {}]);
  });

  it("loading against a spec lists every missing, extra, wrong-shape and wrong-dtype tensor, and returns nothing", async () => {
    const rng = seededRandom();
    const path = join(freshFolder(), "ckpt.safetensors");
    const tensors = randomTensors(rng);
    await saveCheckpoint(path, { tensors, step: 3 });
    const spec = Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, { shape: t.shape, dtype: t.dtype }]));

    // The exact spec loads, in either dtype spelling.
    expectSameTensors((await loadCheckpoint(path, { expect: spec })).tensors, tensors, rng.label);
    const planSpelling = { ...spec, "blocks.0.attn.q.w": { shape: [6, 5], dtype: "f32" as const }, "opt.count": { shape: [], dtype: "i32" as const } };
    expect((await loadCheckpoint(path, { expect: planSpelling })).step).toBe(3);

    const { "data.cursor": _dropped, ...rest } = spec;
    const wrong = {
      ...rest,
      "blocks.0.attn.q.w": { shape: [5, 6], dtype: "F32" as const },
      "opt.mu.blocks.0.attn.q.loraA": { shape: [2, 5], dtype: "F32" as const },
      "opt.count": { shape: [1], dtype: "u32" as const },
      "blocks.0.attn.q.m": { shape: [6], dtype: "F32" as const },
    };
    const error = await loadCheckpoint(path, { expect: wrong }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      [
        `${path}: the tensors do not match what was expected (5 problems):`,
        `  "blocks.0.attn.q.m": missing, expected F32[6]`,
        `  "blocks.0.attn.q.w": expected F32[5,6], found F32[6,5] (wrong shape)`,
        `  "data.cursor": not expected, found U32[3]`,
        `  "opt.count": expected U32[1], found I32[] (wrong dtype and shape)`,
        `  "opt.mu.blocks.0.attn.q.loraA": expected F32[2,5], found F16[2,5] (wrong dtype)`,
      ].join("\n"),
    );
  });

  it("refuse bad steps, keys and metadata before writing, and files that are not dorafuse checkpoints", async () => {
    const folder = freshFolder();
    const path = join(folder, "ckpt.safetensors");
    const cases: [Parameters<typeof saveCheckpoint>[1], RegExp][] = [
      [{ tensors: {}, step: -1 }, /step must be a non-negative safe integer, found -1/],
      [{ tensors: {}, step: 1.5 }, /step must be a non-negative safe integer, found 1.5/],
      [{ tensors: {}, step: 2 ** 53 }, /step must be a non-negative safe integer, found 9007199254740992/],
      [{ tensors: {}, step: 1, rngKey: [1, 2 ** 32] }, /rngKey must be one or more u32 words, found \[1, 4294967296\]/],
      [{ tensors: {}, step: 1, rngKey: [] }, /rngKey must be one or more u32 words, found \[\]/],
      [{ tensors: {}, step: 1, metadata: { "dorafuse.step": "9" } }, /metadata key "dorafuse.step" is reserved/],
    ];
    for (const [contents, pattern] of cases) {
      const error = await saveCheckpoint(path, contents).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(pattern);
      expect((error as Error).message.startsWith(path)).toBe(true);
      expect(readdirSync(folder)).toEqual([]);
    }
    const plain = join(folder, "plain.safetensors");
    await writeSafetensors(plain, { w: { dtype: "F32", shape: [1], data: new Float32Array(1) } }, { format: "pt" });
    await expect(loadCheckpoint(plain)).rejects.toThrow(`${plain}: not a dorafuse checkpoint: its __metadata__ has no "dorafuse.checkpoint" (keys: [format])`);
    await writeSafetensors(plain, {}, { "dorafuse.checkpoint": "1", "dorafuse.step": "12x" });
    await expect(loadCheckpoint(plain)).rejects.toThrow(`${plain}: __metadata__ "dorafuse.step" must be a non-negative integer, found "12x"`);
    await writeSafetensors(plain, {}, { "dorafuse.checkpoint": "1", "dorafuse.step": "1", "dorafuse.rng_key": "[1, -2]" });
    await expect(loadCheckpoint(plain)).rejects.toThrow(`${plain}: __metadata__ "dorafuse.rng_key" must be a JSON list of u32 words, found "[1, -2]"`);
    await writeSafetensors(plain, {}, { "dorafuse.checkpoint": "2", "dorafuse.step": "1" });
    await expect(loadCheckpoint(plain)).rejects.toThrow(`${plain}: checkpoint format version "2", this runtime reads version 1`);
  });
});

describe("an interrupted checkpoint write", () => {
  it("that fails between the temporary file and the rename leaves the previous checkpoint and no temporary file", async () => {
    const rng = seededRandom();
    const folder = freshFolder();
    const path = join(folder, "ckpt.safetensors");
    const good = randomTensors(rng);
    await saveCheckpoint(path, { tensors: good, step: 10, rngKey: [1, 2] });
    const before = readFileSync(path);
    let temporary = "";
    const error = await saveCheckpoint(
      path,
      { tensors: randomTensors(rng), step: 11, rngKey: [3, 4] },
      {
        beforeRename: (t) => {
          temporary = t;
          // the temporary file is complete at this point: a crash now is the case that matters
          expect(readdirSync(folder).sort()).toEqual([basename(t), "ckpt.safetensors"].sort());
          throw new Error("simulated crash");
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(`${path}: writing failed, the previous file (if any) is untouched: simulated crash`);
    expect(temporary.startsWith(join(folder, ".ckpt.safetensors."))).toBe(true);
    expect(readdirSync(folder)).toEqual(["ckpt.safetensors"]);
    expect(readFileSync(path).equals(before)).toBe(true);
    const back = await loadCheckpoint(path);
    expect([back.step, Array.from(back.rngKey!)]).toEqual([10, [1, 2]]);
    expectSameTensors(back.tensors, good, rng.label);
  });

  it("whose process is killed before the rename leaves the previous checkpoint; the leftover is ignored, then removed by the next save", async () => {
    const rng = seededRandom();
    const folder = freshFolder();
    const path = join(folder, "ckpt.safetensors");
    const good = randomTensors(rng);
    await saveCheckpoint(path, { tensors: good, step: 25, rngKey: [5, 6] });
    const before = readFileSync(path);

    // A real crash: another process saves, and SIGKILLs itself once its temporary file is complete.
    const checkpointModule = fileURLToPath(new URL("../src/checkpoint.ts", import.meta.url));
    const script = join(folder, "crash.mts");
    writeFileSync(
      script,
      `import { saveCheckpoint } from ${JSON.stringify(checkpointModule)};
await saveCheckpoint(process.argv[2], { tensors: { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, step: 26 }, {
  beforeRename: () => { process.kill(process.pid, "SIGKILL"); },
});
`,
    );
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const { signal, stderr } = await new Promise<{ signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", script, path], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("error", reject);
      child.on("exit", (_code, signal) => resolve({ signal, stderr }));
    });
    expect(signal, stderr).toBe("SIGKILL");
    const leftovers = readdirSync(folder).filter((n) => n.startsWith(".ckpt.safetensors."));
    expect(leftovers, "the killed writer left its temporary file").toHaveLength(1);
    expect(readFileSync(path).equals(before)).toBe(true);
    const back = await loadCheckpoint(path);
    expect([back.step, Array.from(back.rngKey!)]).toEqual([25, [5, 6]]);
    expectSameTensors(back.tensors, good, rng.label);

    await saveCheckpoint(path, { tensors: good, step: 26 });
    expect(readdirSync(folder).sort()).toEqual(["ckpt.safetensors", "crash.mts"]);
    expect((await loadCheckpoint(path)).step).toBe(26);
  });
});

/** A training-like step: w ← w/2 + x, count += 1, key ← LCG(key), y = w. */
function stepPlan(n: number, initialW: Float32Array) {
  return kernelPlan({
    name: "step",
    wgsl: `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> count: array<i32>;
@group(0) @binding(3) var<storage, read_write> key: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < arrayLength(&w)) {
    w[id.x] = w[id.x] * 0.5 + x[id.x];
    y[id.x] = w[id.x];
  }
  if (id.x == 0u) {
    count[0] = count[0] + 1;
    key[0] = key[0] * 1664525u + 1013904223u;
    key[1] = key[1] ^ key[0];
  }
}`,
    workgroupSize: [64, 1, 1],
    workgroups: [Math.ceil(n / 64), 1, 1],
    tensors: [
      { name: "x", shape: [n], dtype: "f32", role: "input", access: "read" },
      { name: "w", shape: [n], dtype: "f32", role: "state", access: "read_write", data: initialW },
      { name: "count", shape: [1], dtype: "i32", role: "state", access: "read_write" },
      { name: "key", shape: [2], dtype: "u32", role: "state", access: "read_write", data: Uint32Array.of(7, 9) },
      { name: "y", shape: [n], dtype: "f32", role: "output", access: "read_write" },
    ],
  });
}

/** The same step on the CPU, in float32. */
function stepReference(w: Float32Array, x: Float32Array, count: number, key: [number, number]): [Float32Array, number, [number, number]] {
  const next = w.map((v, i) => Math.fround(Math.fround(v * 0.5) + x[i]!));
  const k0 = (Math.imul(key[0], 1664525) + 1013904223) >>> 0;
  return [next, count + 1, [k0, (key[1] ^ k0) >>> 0]];
}

describe("restoring an Executable's state from a checkpoint", () => {
  it("resumes bit-identically to an uninterrupted run, on the device", async () => {
    const rng = seededRandom();
    const n = 200;
    const initialW = rng.floats(n);
    const xs = Array.from({ length: 5 }, () => rng.floats(n));
    const plan = stepPlan(n, initialW);
    const path = join(freshFolder(), "step3.safetensors");

    const uninterrupted = await loadPlan(gpu.device, plan);
    for (const x of xs.slice(0, 3)) await (await uninterrupted.run({ x })).readAll();
    await saveCheckpoint(path, { tensors: await captureState(uninterrupted), step: 3 });
    for (const x of xs.slice(3)) await (await uninterrupted.run({ x })).readAll();

    const resumed = await loadPlan(gpu.device, plan);
    const checkpoint = await loadCheckpoint(path, { expect: stateSpec(resumed) });
    await restoreState(resumed, checkpoint);
    for (const name of ["w", "count", "key"]) {
      expect(bitsOf(await resumed.readState(name)).equals(bitsOf(checkpoint.tensors[name]!.data)), `${name} restored, ${rng.label}`).toBe(true);
    }
    for (const x of xs.slice(3)) await (await resumed.run({ x })).readAll();

    let reference: [Float32Array, number, [number, number]] = [initialW, 0, [7, 9]];
    for (const x of xs) reference = stepReference(reference[0], x, reference[1], reference[2]);
    for (const exe of [uninterrupted, resumed]) {
      expect(bitsOf(await exe.readState("w")).equals(bitsOf(reference[0])), rng.label).toBe(true);
      expect(Array.from(await exe.readState("count"))).toEqual([5]);
      expect(Array.from(await exe.readState("key"))).toEqual(reference[2]);
    }
    uninterrupted.dispose();
    resumed.dispose();
  });

  it("checks every state tensor before writing any of them", async () => {
    const rng = seededRandom();
    const n = 40;
    const initialW = rng.floats(n);
    const exe = await loadPlan(gpu.device, stepPlan(n, initialW));
    const tensors: Record<string, HostTensor> = {
      w: { dtype: "F32", shape: [n], data: rng.floats(n) },
      key: { dtype: "U32", shape: [3], data: Uint32Array.of(1, 2, 3) },
      extra: { dtype: "F32", shape: [1], data: Float32Array.of(1) },
    };
    const error = await restoreState(exe, { tensors, path: "ckpt.safetensors" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      [
        `restoring the plan's state from ckpt.safetensors: the tensors do not match what was expected (3 problems):`,
        `  "count": missing, expected I32[1]`,
        `  "extra": not expected, found F32[1]`,
        `  "key": expected U32[2], found U32[3] (wrong shape)`,
      ].join("\n"),
    );
    // w was valid, but nothing is written unless everything is.
    expect(bitsOf(await exe.readState("w")).equals(bitsOf(initialW)), rng.label).toBe(true);
    expect(Array.from(await exe.readState("key"))).toEqual([7, 9]);

    // With allowExtra the extra tensor is ignored; a complete checkpoint then restores.
    const complete = { ...tensors, key: { dtype: "U32" as const, shape: [2], data: Uint32Array.of(11, 12) as SafetensorsArray }, count: { dtype: "I32" as const, shape: [1], data: Int32Array.of(-4) } };
    await expect(restoreState(exe, { tensors: complete })).rejects.toThrow(/"extra": not expected/);
    await restoreState(exe, { tensors: complete }, { allowExtra: true });
    expect(bitsOf(await exe.readState("w")).equals(bitsOf(tensors.w!.data)), rng.label).toBe(true);
    expect([Array.from(await exe.readState("key")), Array.from(await exe.readState("count"))]).toEqual([[11, 12], [-4]]);
    exe.dispose();
  });
});
