// The results table's rows and figures, the samples page, and the run folder's layout on disk.
import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  ReportError,
  createRunFolder,
  formatBytes,
  formatCount,
  resultsMarkdown,
  resultsTable,
  runPaths,
  samplesMarkdown,
  writeText,
  type MethodResult,
} from "../src/index.js";

const results: MethodResult[] = [
  { method: "full", trainableParams: 1_234_567, totalParams: 1_234_567, validationLoss: 1.4, stepTimeMs: 41.25, peakMemoryBytes: 96 * 2 ** 20 },
  { method: "lora", trainableParams: 24_576, totalParams: 1_259_143, validationLoss: 1.52, stepTimeMs: 23.5, peakMemoryBytes: 40.5 * 2 ** 20 },
  { method: "dora", trainableParams: 25_088, totalParams: 1_259_655, validationLoss: 1.45, stepTimeMs: 8.125, peakMemoryBytes: 1536 },
];

/** The cells of each body row of a markdown table. */
const rowsOf = (table: string) =>
  table
    .split("\n")
    .slice(2)
    .map((l) => l.slice(2, -2).split(" | "));

describe("resultsTable", () => {
  it("has one row per method in order, with bits/byte = nats / ln 2 and the best loss in bold", () => {
    const table = resultsTable(results);
    const lines = table.split("\n");
    expect(lines[0]).toBe("| method | trainable parameters | validation loss (nats) | validation bits/byte | step time | peak memory |");
    expect(lines[1]).toBe("|:---|---:|---:|---:|---:|---:|");
    const rows = rowsOf(table);
    expect(rows.map((r) => r[0])).toEqual(["full", "lora", "dora"]);
    for (const [i, r] of rows.entries()) {
      const plain = (s: string) => Number(s.replace(/\*\*/g, ""));
      expect(plain(r[2]!)).toBeCloseTo(results[i]!.validationLoss, 4);
      expect(plain(r[3]!)).toBeCloseTo(results[i]!.validationLoss / Math.log(2), 4);
      expect(r[2]!.startsWith("**")).toBe(i === 0);
    }
    expect(rows[0]!.slice(1)).toEqual(["1.23M (100.00%)", "**1.4000**", "**2.0198**", "41.3 ms", "96.0 MiB"]);
    expect(rows[1]!.slice(1)).toEqual(["24.6k (1.95%)", "1.5200", "2.1929", "23.5 ms", "40.5 MiB"]);
    expect(rows[2]![4]).toBe("8.13 ms");
    expect(rows[2]![5]).toBe("1.50 KiB");
  });

  it("refuses missing or negative figures, naming the method and field", () => {
    expect(() => resultsTable([])).toThrow(ReportError);
    expect(() => resultsTable([{ ...results[0]!, stepTimeMs: NaN }])).toThrow(/full.stepTimeMs must be a non-negative number, found NaN/);
    expect(() => resultsTable([{ ...results[1]!, peakMemoryBytes: -1 }])).toThrow(/lora.peakMemoryBytes/);
  });

  it("formats counts and bytes in readable units", () => {
    expect([999, 1000, 45_600, 2_500_000, 7e9].map(formatCount)).toEqual(["999", "1.0k", "45.6k", "2.50M", "7.00B"]);
    expect([0, 512, 1024, 1536, 10 * 2 ** 20, 3 * 2 ** 30].map(formatBytes)).toEqual(["0 B", "512 B", "1.00 KiB", "1.50 KiB", "10.0 MiB", "3.00 GiB"]);
  });

  it("results.md names the machine and the settings above the table", () => {
    const md = resultsMarkdown("default", results, { machine: "llvmpipe (LLVM 19, 256 bits), Vulkan", settings: { steps: 300, rank: 8 } });
    expect(md).toContain("# Results: default");
    expect(md).toContain("Machine: llvmpipe (LLVM 19, 256 bits), Vulkan");
    expect(md).toContain("Settings: `steps=300`, `rank=8`");
    expect(md).toContain(resultsTable(results));
  });
});

describe("samplesMarkdown", () => {
  it("groups continuations by prompt, each in a fence its text cannot close", () => {
    const md = samplesMarkdown([
      { model: "base", prompt: "Call me", text: " Congress ```" },
      { model: "dora", prompt: "Call me", text: " Ishmael.", settings: "temperature 0.8, seed 1" },
      { model: "base", prompt: "The whale", text: " of the Union" },
    ]);
    expect(md.match(/^## Prompt: /gm)!.length).toBe(2);
    expect(md).toContain("### dora (temperature 0.8, seed 1)");
    expect(md).toContain("````text\nCall me Congress ```\n````");
    expect(md).toContain("```text\nCall me Ishmael.\n```");
    expect(md.indexOf("The whale")).toBeGreaterThan(md.indexOf("Ishmael"));
  });
});

describe("run folder", () => {
  it("lays out the documented paths, with checkpoints named to sort by step", () => {
    const p = runPaths("/out", "default");
    const m = p.method("dora");
    expect([p.results, p.samples, p.lossPlot, p.analysisPlot].map((x) => relative("/out", x))).toEqual([
      "default/results.md",
      "default/samples.md",
      "default/loss.svg",
      "default/analysis.svg",
    ]);
    expect([m.checkpoints, m.adapter, m.merged].map((x) => relative("/out", x))).toEqual(["default/dora/checkpoints", "default/dora/adapter", "default/dora/merged.safetensors"]);
    const names = [5, 40, 300, 1000].map((s) => m.checkpoint(s));
    expect([...names].sort()).toEqual(names);
    expect(relative("/out", m.checkpoint(40))).toBe("default/dora/checkpoints/step-000040.safetensors");
    expect(() => runPaths("/out", "../escape")).toThrow(/a run name must be letters, digits/);
    expect(() => p.method("a/b")).toThrow(ReportError);
    expect(() => m.checkpoint(-1)).toThrow(/step must be a non-negative integer/);
  });

  it("creates the folders and writes readable files", async () => {
    const out = await mkdtemp(join(tmpdir(), "dorafuse-finetune-"));
    try {
      const p = await createRunFolder(out, "tiny", ["base", "lora", "dora"]);
      for (const m of ["base", "lora", "dora"]) expect((await stat(p.method(m).checkpoints)).isDirectory()).toBe(true);
      await writeText(p.results, resultsMarkdown("tiny", results, { machine: "test", settings: {} }));
      await writeText(join(p.method("dora").adapter, "README.md"), "adapter");
      expect(await readFile(p.results, "utf8")).toContain("| dora |");
      expect((await readdir(p.root)).sort()).toEqual(["base", "dora", "lora", "results.md"]);
      expect(await readFile(join(p.method("dora").adapter, "README.md"), "utf8")).toBe("adapter");
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
