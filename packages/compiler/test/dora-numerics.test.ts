// The fused DoRA layer's edge cases on the GPU: a fresh adapter reproduces the base layer, the
// merged layer reproduces the unmerged one, and a zero row of W (with a zero row of B, so the
// direction's row vanishes) gives finite outputs and gradients that still match the float64
// interpreter. GPU cases have long timeouts: lavapipe compiles each new kernel when it first
// runs, seconds each, and much longer on a loaded machine.
import { describe, expect, it } from "vitest";
import { doraLinear, evaluate, HostTensor, mergeDora, nn, randomKey, spec, splitKey, trace, type Tensor } from "@dorafuse/core";
import { lowerGraph } from "@dorafuse/compiler";
import { relErr } from "../../core/test/support/numeric.js";
import { randomArray, withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectOutputs, lowerDora, runAgainstReference } from "./support/dora.js";
import { roundTo, runLowered } from "./support/run.js";

const gpu = useDevice();
type F = Tensor<number[], "f32">;
const OPTS = { rank: 4, alpha: 6 };

/** A DoRA layer on nn.linear's initialization, as host tensors (A random, B as given). */
function layer(seed: number, inDim: number, out: number, trained: boolean): Record<string, HostTensor> {
  const p = evaluate((k: never) => {
    const [kb, ka] = splitKey(k, 2);
    return doraLinear.wrap(ka, nn.linear.init(kb, { inDim, outDim: out }), OPTS);
  }, [randomKey(seed)] as never) as unknown as Record<string, HostTensor>;
  const round = (t: HostTensor) => new HostTensor(t.shape, roundTo("f32", t.data), "f32");
  const out2 = Object.fromEntries(Object.entries(p).map(([k, t]) => [k, round(t)]));
  if (trained) {
    let s = seed;
    const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 0.4 - 0.2;
    out2.loraB = new HostTensor(out2.loraB!.shape, roundTo("f32", out2.loraB!.data.map(rand)), "f32");
    out2.m = new HostTensor(out2.m!.shape, roundTo("f32", out2.m!.data.map((v) => v * (1 + rand()))), "f32");
  }
  return out2;
}

/** Runs `f(params, x)` compiled (with the DoRA rewrite) on the GPU. */
async function gpuRun(f: (p: never, x: F) => F, p: Record<string, HostTensor>, x: HostTensor): Promise<Float64Array> {
  const specs = [Object.fromEntries(Object.entries(p).map(([k, t]) => [k, spec(t.shape)])), spec(x.shape)];
  const g = trace(f as never, specs as never).graph;
  const lowered = lowerDora(g, gpu.target, "single");
  const inputs = [...Object.keys(p).sort().map((k) => p[k]!.data), x.data];
  return (await runLowered(gpu.device, lowered, inputs))[0]!;
}

describe("fused DoRA edge cases on the GPU", () => {
  it("a fresh adapter reproduces the base layer", () =>
    withSeed(async (rng) => {
      const p = layer(rng.int(0, 1e6), 24, 10, false);
      const x = new HostTensor([3, 24], roundTo("f32", randomArray(rng, 72)), "f32");
      const dora = await gpuRun((q, xx) => doraLinear.apply(q, xx as never, OPTS) as F, p, x);
      const base = await gpuRun((q, xx) => nn.linear.apply(q, xx as never) as F, { w: p.w!, b: p.b! }, x);
      // g = m / n is 1 up to float32 rounding of n (m was initialised to n in float64)
      expect(relErr(dora, base)).toBeLessThan(1e-6);
    }), 600_000);

  it("the merged layer reproduces the unmerged one", () =>
    withSeed(async (rng) => {
      const p = layer(rng.int(0, 1e6), 24, 10, true);
      const x = new HostTensor([5, 24], roundTo("f32", randomArray(rng, 120)), "f32");
      const dora = await gpuRun((q, xx) => doraLinear.apply(q, xx as never, OPTS) as F, p, x);
      const merged = await gpuRun((q, xx) => nn.linear.apply(mergeDora(q, OPTS) as never, xx as never) as F, p, x);
      const plain = evaluate((q: never) => mergeDora(q, OPTS), [p] as never) as unknown as Record<string, HostTensor>;
      const linear = await gpuRun((q, xx) => nn.linear.apply(q, xx as never) as F, { w: new HostTensor(plain.w!.shape, roundTo("f32", plain.w!.data), "f32"), b: p.b! }, x);
      expect(relErr(dora, linear)).toBeLessThan(1e-5);
      expect(relErr(merged, linear)).toBeLessThan(1e-5);
      // the merged form was recognized too: no out × in weight was built on the GPU
      const g = trace(((q: never, xx: never) => nn.linear.apply(mergeDora(q, OPTS) as never, xx)) as never, [Object.fromEntries(Object.entries(p).map(([k, t]) => [k, spec(t.shape)])), spec([5, 24])] as never).graph;
      expect(lowerGraph(g, { target: gpu.target }).graph.nodes.some((n) => n.op === "doraLinear")).toBe(true);
    }), 600_000);

  for (const detach of [true, false]) {
    it(`a zero row of W gives finite outputs and gradients (norm ${detach ? "detached" : "differentiated"})`, () =>
      withSeed(async (rng) => {
        const c = { lead: [3], inDim: 9, out: 5, rank: 2, detach, dropout: detach ? 0 : 0.2 };
        const { got, want, detached } = await runAgainstReference(gpu.device, gpu.target, rng, c, detach ? "single" : "split", 2);
        for (const v of got) expect(v.every(Number.isFinite)).toBe(true);
        // the zero row's output is its bias alone
        expect(got[0]!.filter((_, i) => i % 5 === 2).every((v, i) => Math.abs(v - want[0]![i * 5 + 2]!) < 1e-6)).toBe(true);
        expectOutputs(got, want, detached, 3e-5, "zero row");
      }), 600_000);
  }
});
