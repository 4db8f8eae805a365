// `explain` as a library function and as `dorafuse explain <file> --entry <name>`: the graph,
// each kernel with the reason for each boundary, the WGSL and the totals.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { softmax, spec, type Tensor } from "@dorafuse/core";
import { explain } from "@dorafuse/compiler";
import { makeGraph } from "../../core/test/support/graph.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = fileURLToPath(new URL("../../cli/bin/dorafuse.mjs", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/entries.ts", import.meta.url));

describe("explain", () => {
  it("shows the graph, kernels with their reads and why, WGSL with node headers, and totals", () => {
    const text = explain((x: Tensor) => softmax(x as Tensor<number[], "f32">).sum(0), [spec([4, 10])]);
    expect(text).toMatch(/== graph after passes \(\d+ nodes\) ==/);
    expect(text).toMatch(/k0_reduce: 2 reductions over rows of 10/);
    expect(text).toMatch(/reads {2}%\d+ f32\[4,10\]: graph input "arg0"/);
    expect(text).toMatch(/reads {2}%\d+ f32\[4\]: from k0_reduce — reduceMax result read by other kernels, which could not join this one: the consumer reduces a different space/);
    expect(text).toMatch(/writes %\d+ f32\[10\]: graph output/);
    expect(text).toMatch(/== fusion decisions ==\n.*shares its kernel/);
    expect(text).toMatch(/--- k0_reduce ---\n\/\/ kernel k0 \(reduce\)\n\/\/ {3}%\d+:f32\[4\] = reduceMax\[axes=\[1\]\]/);
    expect(text).toMatch(/== totals ==\nkernels: 2\ndispatches per call: 2\nbytes read: .*, written: .*\nFLOPs: .*\npeak memory: /);
  });

  it("explains a graph, and the unfused schedule with one kernel per primitive", () => {
    const g = makeGraph([["x", [3]]], (b, x) => b.emit("exp", [b.emit("neg", [x])]));
    expect(explain(g, [], { fusion: false, wgsl: false })).toMatch(/kernels: 2\n/);
    expect(explain(g, [], { wgsl: false })).toMatch(/kernels: 1\n/);
    expect(explain(g, [], { wgsl: false })).not.toMatch(/== WGSL ==/);
  });

  it("dorafuse explain <file> --entry <name> prints the same report for a stateful training step", () => {
    const r = spawnSync(process.execPath, [bin, "explain", fixture, "--entry", "step", "--no-wgsl"], { cwd: root, encoding: "utf8" });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/graph\(%\d+:f32\[8,6\] "arg0", %\d+:f32\[3,8\] "arg1"\)/);
    expect(r.stdout).toMatch(/kernels: \d+\ndispatches per call: \d+/);
    expect(r.stdout).toMatch(/peak memory: /);
  });

  it("dorafuse explain names the entries a file has when the one asked for is missing", () => {
    const r = spawnSync(process.execPath, [bin, "explain", fixture, "--entry", "nope"], { cwd: root, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/has no export "nope"; its entries are \[probs, step\]/);
  });
});
