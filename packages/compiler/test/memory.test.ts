// The memory plan: liveness-based reuse of the arena, elementwise outputs written in place
// over inputs that die, state updated in place; the validator that rejects aliasing of live
// tensors; and the peak the plan reports equal to what the runtime allocates.
import { describe, expect, it } from "vitest";
import type { GraphBuilder, Node } from "@dorafuse/core";
import { lowerGraph, validateMemory } from "@dorafuse/compiler";
import { loadPlan } from "@dorafuse/runtime";
import { makeGraph } from "../../core/test/support/graph.js";
import { withSeed } from "../../core/test/support/random.js";
import { useDevice } from "./support/device.js";
import { expectMatchesInterpreter, randomInputs, runLowered } from "./support/run.js";

const gpu = useDevice();
const chain = (b: GraphBuilder, x: Node, n: number) => {
  let v = x;
  for (let i = 0; i < n; i++) v = b.emit(i % 2 ? "exp" : "neg", [v]);
  return v;
};

describe("memory plan", () => {
  it("a chain of unfused kernels reuses memory: the arena holds two tensors, not twenty", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [129, 3]]], (b, x) => b.emit("reduceSum", [chain(b, b.emit("tanh", [x]), 20)], { axes: [0] }));
      const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g, { x: [-0.5, 0.5] }), { target: gpu.target, fusion: false });
      const one = 129 * 3 * 4;
      expect(l.memory.arenaBytes).toBeLessThanOrEqual(2 * Math.ceil(one / 16) * 16 + 16);
      expect(l.memory.inPlace.length).toBeGreaterThan(10);
    }));

  it("an elementwise output takes the memory of an input that dies in its kernel, and results stay right", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["x", [17, 5]], ["y", [17, 5]]], (b, x, y) => {
        const t = b.emit("reduceSum", [b.emit("mul", [x, y])], { axes: [1] }); // a tensor in the arena
        const u = b.emit("exp", [t]); // dies here → u written over t
        return b.emit("reduceMax", [u], { axes: [0] });
      });
      const l = await expectMatchesInterpreter(gpu.device, g, randomInputs(rng, g), { target: gpu.target, fusion: false });
      const pairs = l.memory.inPlace.map(([a, b]) => `${a.op}→${b.op}`);
      expect(pairs).toContain("reduceSum→exp");
    }));

  it("a state update computed elementwise is written over its state tensor: no copy step", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["w", [33]], ["grad", [33]]], (b, w, grad) => [b.emit("sub", [w, b.emit("mul", [grad, b.emit("broadcast", [b.emit("constant", [], { value: 0.1 })], { shape: [33] })])])]);
      const l = lowerGraph(g, { target: gpu.target, state: [{ input: 0, output: 0 }] });
      validateMemory(l.memory);
      expect(l.totals.copies).toBe(0);
      expect(l.memory.inPlace.map(([a]) => a.attrs.name)).toContain("w");
      const w = randomInputs(rng, g)[0]!;
      const grad = randomInputs(rng, g)[1]!;
      const exe = await loadPlan(gpu.device, l.plan);
      await exe.writeState("w", Float32Array.from(w));
      await (await exe.run({ grad: Float32Array.from(grad) })).readAll();
      const after = await exe.readState("w");
      const want = w.map((v, i) => Math.fround(v - Math.fround(grad[i]! * Math.fround(0.1))));
      expect(Array.from(after as Float32Array)).toEqual(Array.from(Float32Array.from(want)));
      exe.dispose();
    }));

  it("a state update read again later is computed in the arena and copied back at the end", () => {
    const g = makeGraph([["w", [9]]], (b, w) => {
      const w2 = b.emit("exp", [w]);
      return [w2, b.emit("reduceSum", [b.emit("add", [w, w2])], { axes: [0] })];
    });
    const l = lowerGraph(g, { target: gpu.target, fusion: false, state: [{ input: 0, output: 0 }] });
    validateMemory(l.memory);
    expect(l.totals.copies).toBe(1);
  });

  it("the validator rejects two live tensors sharing bytes, naming both", () => {
    const g = makeGraph([["x", [17]]], (b, x) => {
      const a = b.emit("exp", [x]);
      const c = b.emit("neg", [x]);
      return b.emit("add", [a, c]);
    });
    const l = lowerGraph(g, { target: gpu.target, fusion: false });
    const [a, c] = l.schedule.groups.slice(0, 2).map((k) => k.outputs[0]!);
    const broken = { ...l.memory, homes: new Map(l.memory.homes) };
    broken.homes.set(c!, broken.homes.get(a!)!);
    expect(() => validateMemory(broken)).toThrow(new RegExp(`%${a!.id} \\(exp .*%${c!.id} \\(neg|%${c!.id} \\(neg .*%${a!.id} \\(exp`));
  });

  it("the peak the plan reports before running is what the runtime allocates", () =>
    withSeed(async (rng) => {
      for (const fusion of [true, false]) {
        const g = makeGraph([["x", [33, 17]], ["w", [17, 9]], ["s", [9]]], (b, x, w, s) => {
          const y = b.emit("tanh", [b.emit("matmul", [x, w])]);
          return [b.emit("reduceSum", [y], { axes: [0] }), b.emit("mul", [s, s])];
        });
        const l = lowerGraph(g, { target: gpu.target, fusion, state: [{ input: 2, output: 1 }] });
        const exe = await loadPlan(gpu.device, l.plan);
        expect(exe.footprint.bytes).toBe(l.totals.peakBytes);
        exe.dispose();
        await runLowered(gpu.device, l, randomInputs(rng, g));
      }
    }));
});

describe("state that swaps", () => {
  it("state updated with another state's old value reads the old value, not the new one", () =>
    withSeed(async (rng) => {
      const g = makeGraph([["a", [5]], ["b", [5]]], (_b, a, b) => [b, a]);
      const l = lowerGraph(g, { target: gpu.target, state: [{ input: 0, output: 0 }, { input: 1, output: 1 }] });
      validateMemory(l.memory);
      const [a, b] = randomInputs(rng, g);
      const exe = await loadPlan(gpu.device, l.plan);
      await exe.writeState("a", Float32Array.from(a!));
      await exe.writeState("b", Float32Array.from(b!));
      await (await exe.run({})).readAll();
      expect(Array.from(await exe.readState("a"))).toEqual(Array.from(Float32Array.from(b!)));
      expect(Array.from(await exe.readState("b"))).toEqual(Array.from(Float32Array.from(a!)));
      exe.dispose();
    }));
});
