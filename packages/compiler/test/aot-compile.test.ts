// Ahead-of-time compilation of examples/aot/model.ts: the generated modules, imported and run,
// give what the in-process path gives (compile() for the forward pass, trainStep for the
// training step, bit for bit); they typecheck under strict with shapes in their types; a
// tensor of the wrong shape or dtype is refused naming the argument; an adapter below the
// limits the plan needs is refused naming the limit.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flatten, HostTensor, unflatten } from "@dorafuse/core";
import { compile, compileModule, trainStep, type TrainEntry } from "@dorafuse/compiler";
import { DeviceError, importPeftAdapter, loadCompiled, PlanError, shaped, type CompiledManifest, type CompiledTrainStep, type Device, type ShapedArray } from "@dorafuse/runtime";
import { withSeed, type Rng } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const modelFile = join(root, "examples/aot/model.ts");
const out = join(root, "examples/aot/gen", `test-${process.pid}-${Date.now().toString(36)}`);
const gpu = useDevice();

type Model = typeof import("../../../examples/aot/model.js");
let model: Model;
const generated: Record<string, { load(device: Device): Promise<unknown> }> = {};

beforeAll(async () => {
  model = (await import(pathToFileURL(modelFile).href)) as Model;
  for (const entry of ["forward", "train"]) {
    const r = await compileModule({ file: modelFile, entry, out, device: gpu.device });
    generated[entry] = (await import(pathToFileURL(r.module).href)) as { load(device: Device): Promise<unknown> };
  }
}, 600_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

const isHost = (v: unknown): v is HostTensor => v instanceof HostTensor;
const toShapedTree = (tree: unknown) => {
  const [leaves, def] = flatten(tree, isHost);
  return unflatten(def, leaves.map((h) => shaped(h.shape, h.dtype === "i32" ? Int32Array.from(h.data) : Float32Array.from(h.data))));
};
const tokens = (rng: Rng) => new HostTensor([model.shape.batch, model.shape.seq], Float64Array.from({ length: model.shape.batch * model.shape.seq }, () => rng.int(0, model.lm.vocab - 1)), "i32");
const bytes = (a: ShapedArray) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);

describe("dorafuse compile (library)", () => {
  it("writes the manifest: plan with WGSL by file, fingerprint, compiler version, the adapter limits it was compiled for and needs", () => {
    const m = JSON.parse(readFileSync(join(out, "train/manifest.json"), "utf8")) as CompiledManifest;
    expect(m).toMatchObject({ format: "dorafuse.compiled", version: 1, entry: "train", kind: "train", compiler: "@dorafuse/compiler 0.1.0", initial: "initial.safetensors" });
    expect(m.fingerprint).toMatch(/^[0-9a-f]{14}$/);
    expect(m.compiledFor.limits.maxStorageBuffersPerShaderStage).toBe(gpu.device.limits.maxStorageBuffersPerShaderStage);
    expect(m.requires.limits.maxStorageBuffersPerShaderStage).toBeGreaterThan(0);
    expect(m.plan.kernels.every((k) => k.wgsl === "")).toBe(true);
    expect(m.wgsl!.length).toBe(m.plan.kernels.length);
    expect(readFileSync(join(out, "train", m.wgsl![0]!.file), "utf8")).toMatch(/@compute @workgroup_size/);
    expect(m.stats).toEqual({ output: "out.stats", names: ["accuracy"] });
    expect(m.adapter).toMatchObject({ prefix: "params.", config: { r: 4, lora_alpha: 8, use_dora: true, lora_dropout: 0.05 } });
    expect(m.args.map((a) => [a.label, a.shape, a.dtype])).toEqual([["batch.ids", [4, 16], "i32"], ["batch.targets", [4, 16], "i32"]]);
  });

  it("the generated forward gives the same logits as compile() in process", () =>
    withSeed(async (rng) => {
      const forward = (await generated.forward!.load(gpu.device)) as (params: unknown, ids: unknown) => Promise<{ logits: ShapedArray }>;
      const inProcess = await compile(model.forward.fn, model.forward.specs, { ...model.forward.options, device: gpu.device });
      const ids = tokens(rng);
      const got = await forward(toShapedTree(model.params), toShapedTree(ids));
      const want = (await inProcess.run(model.params, ids)) as { logits: HostTensor };
      expect(got.logits.shape).toEqual([4, 16, 32]);
      expect(Array.from(got.logits.data)).toEqual(Array.from(Float32Array.from(want.logits.data)));
      inProcess.dispose();
    }));

  it("the generated training step takes the same steps as trainStep in process, bit for bit, and checkpoints and exports like it", () =>
    withSeed(async (rng) => {
      const train = (await generated.train!.load(gpu.device)) as CompiledTrainStep<unknown, Record<string, ShapedArray>, "accuracy">;
      const entry = model.train as TrainEntry;
      const inProcess = await trainStep(entry.loss, entry.optimizer, { ...entry.options, device: gpu.device });
      for (let k = 0; k < 4; k++) {
        const batch = { ids: tokens(rng), targets: tokens(rng) };
        const [a, b] = [await train.step(toShapedTree(batch)), await inProcess.step(batch)];
        expect(a.step).toBe(k + 1);
        expect(await a.loss).toBe(await b.loss);
        expect((await a.metrics).accuracy).toBe((await b.metrics).accuracy);
      }
      const [got, want] = [await train.readState(), (await inProcess.readState()) as Record<string, ShapedArray>];
      for (const key of Object.keys(want)) expect(bytes(got[key]!).equals(bytes(want[key]!)), key).toBe(true);

      const path = join(out, "step-4.safetensors");
      await train.save(path);
      const again = (await generated.train!.load(gpu.device)) as typeof train;
      expect(again.stepCount).toBe(0);
      await again.restore(path);
      expect(again.stepCount).toBe(4);
      const batch = toShapedTree({ ids: tokens(rng), targets: tokens(rng) });
      expect(await (await again.step(batch)).loss).toBe(await (await train.step(batch)).loss);

      await train.exportAdapter(join(out, "adapter"));
      const peft = await importPeftAdapter(join(out, "adapter"));
      expect(peft.config).toMatchObject({ r: 4, lora_alpha: 8, use_dora: true, target_modules: ["down", "k", "o", "q", "up", "v"] });
      expect(Object.keys(peft.tensors)).toHaveLength(model.lm.layers * 6 * 3);
      for (const l of peft.layers) expect(bytes({ shape: [], data: peft.tensors[`${l.path}.m`]!.data as Float32Array }).equals(bytes((await train.readState(`params.${l.path}.m`))!))).toBe(true);
      for (const t of [train, again, inProcess]) t.dispose();
    }));

  it("a tensor of the wrong shape or dtype is refused, naming the argument", () =>
    withSeed(async (rng) => {
      const forward = (await generated.forward!.load(gpu.device)) as (params: unknown, ids: unknown) => Promise<unknown>;
      const params = toShapedTree(model.params);
      await expect(forward(params, shaped([4, 8], new Int32Array(32)))).rejects.toThrow(/forward: argument "ids" must be i32\[4,16\], found i32\[4,8\]/);
      await expect(forward(params, shaped([4, 16], new Float32Array(64)))).rejects.toThrow(/forward: argument "ids" must be i32\[4,16\], found f32\[4,16\]/);
      await expect(forward(params, new Int32Array(64))).rejects.toThrow(/argument "ids" must be i32\[4,16\]: give \{ shape, data \} or a GPU tensor, found a Int32Array without a shape/);
      const bad = { ...(params as Record<string, unknown>), head: { w: shaped([32, 31], new Float32Array(32 * 31)) } };
      await expect(forward(bad, toShapedTree(tokens(rng)))).rejects.toThrow(/argument "params\.head\.w" must be f32\[32,32\], found f32\[32,31\]/);
      const train = (await generated.train!.load(gpu.device)) as CompiledTrainStep;
      const ids = toShapedTree(tokens(rng));
      await expect(train.step({ ids, targets: shaped([4, 16], new Uint32Array(64)) })).rejects.toThrow(/train: argument "batch\.targets" must be i32\[4,16\], found u32\[4,16\]/);
      await expect(train.step({ ids })).rejects.toThrow(/train: argument "batch\.targets" must be i32\[4,16\] \(\{ shape, data \} or a GPU tensor\), found nothing/);
      expect(train.stepCount).toBe(0);
      train.dispose();
    }));

  it("refuses to load on an adapter whose limits are below what the plan needs, naming the limit", async () => {
    const m = JSON.parse(readFileSync(join(out, "train/manifest.json"), "utf8")) as CompiledManifest;
    const needed = m.requires.limits.maxStorageBuffersPerShaderStage!;
    const smaller = Object.create(gpu.device, { limits: { value: { ...gpu.device.limits, maxStorageBuffersPerShaderStage: needed - 1 } } }) as Device;
    const refused = await generated.train!.load(smaller).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DeviceError);
    expect((refused as Error).message).toMatch(new RegExp(`train: compiled for ".*", it cannot run on ".*" \\(1 problem\\):\\n  maxStorageBuffersPerShaderStage: needs at least ${needed}, this adapter has ${needed - 1}\\n`));
    // a module compiled on a bigger adapter: the manifest asks for more than this one has
    const copy = join(out, "bigger");
    cpSync(join(out, "train"), copy, { recursive: true });
    const big = { ...m, requires: { ...m.requires, limits: { ...m.requires.limits, maxComputeWorkgroupStorageSize: 1 << 30 }, features: ["shader-f64"] } };
    writeFileSync(join(copy, "manifest.json"), JSON.stringify(big));
    await expect(loadCompiled(gpu.device, copy)).rejects.toThrow(/\(2 problems\):\n {2}maxComputeWorkgroupStorageSize: needs at least 1073741824, this adapter has \d+\n {2}feature shader-f64: needed/);
    writeFileSync(join(copy, m.wgsl![0]!.file), "// edited\n");
    writeFileSync(join(copy, "manifest.json"), JSON.stringify(m));
    await expect(loadCompiled(gpu.device, copy)).rejects.toThrow(PlanError);
  });

  it("never replaces a folder or module it did not write", async () => {
    const mine = join(out, "mine");
    mkdirSync(join(mine, "validate"), { recursive: true });
    writeFileSync(join(mine, "validate", "notes.txt"), "keep me");
    await expect(compileModule({ file: modelFile, entry: "validate", out: mine, portable: true })).rejects.toThrow(/refusing to replace .*validate: it is not the output of dorafuse compile \(no manifest\.json\)/);
    rmSync(join(mine, "validate"), { recursive: true });
    writeFileSync(join(mine, "validate.ts"), "export const mine = 1;\n");
    await expect(compileModule({ file: modelFile, entry: "validate", out: mine, portable: true })).rejects.toThrow(/refusing to overwrite .*validate\.ts: it was not written by dorafuse compile/);
    expect(readFileSync(join(mine, "validate.ts"), "utf8")).toBe("export const mine = 1;\n");
    rmSync(join(mine, "validate.ts"));
    const first = await compileModule({ file: modelFile, entry: "validate", out: mine, portable: true });
    const again = await compileModule({ file: modelFile, entry: "validate", out: mine, portable: true });
    expect(again.data.fingerprint).toBe(first.data.fingerprint);
  });

  it("the generated modules typecheck under strict, with shapes and dtypes in their types", () => {
    const dir = join(out, "typecheck");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "use.ts"),
      `import { createDevice, shaped } from "@dorafuse/runtime";
import { load as loadForward, type Args } from "../forward.js";
import { load as loadTrain } from "../train.js";

export async function use(params: Args["params"]): Promise<number> {
  const device = await createDevice();
  const forward = await loadForward(device);
  const ids = shaped([4, 16], new Int32Array(64));
  const { logits } = await forward(params, ids);
  const dims: readonly [4, 16, 32] = logits.shape;
  const train = await loadTrain(device);
  const r = await train.step({ ids, targets: ids });
  const accuracy: number = (await r.metrics).accuracy;
  // @ts-expect-error a batch of the wrong shape
  await train.step({ ids: shaped([4, 8], new Int32Array(32)), targets: ids });
  // @ts-expect-error a batch of the wrong dtype
  await train.step({ ids: shaped([4, 16], new Float32Array(64)), targets: ids });
  // @ts-expect-error only the metrics the loss returns
  void (await r.metrics).perplexity;
  const a = await train.readState("params.blocks.0.attn.q.loraA");
  const rank: 4 = a.shape[0];
  // @ts-expect-error state names are checked
  await train.readState("params.blocks.0.attn.q.lora_A");
  await train.save("ckpt.safetensors");
  return dims[0] + rank + accuracy + (await r.loss);
}
`,
    );
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.base.json"),
        compilerOptions: { strict: true, noEmit: true, composite: false, declaration: false, declarationMap: false, customConditions: ["dorafuse-src"], allowImportingTsExtensions: true },
        files: ["use.ts", "../forward.ts", "../train.ts"],
      }),
    );
    const r = spawnSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")], { cwd: root, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 600_000);
});
