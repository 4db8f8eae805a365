// The tables and the samples page: bits/byte, mean ± sd over seeds, one row per (method,
// rank) or per run, the correlations, and fences that generated text cannot close.
import { describe, expect, it } from "vitest";
import { ReportError, bitsPerByte, correlationTable, formatCount, formatMeanSd, groupRuns, markdownTable, meanSd, runsTable, samplesMarkdown, summaryTable, type RunResult } from "../src/index.js";

const run = (name: string, method: string, rank: number | null, seed: number, after: number, correlation: Record<string, number> = { q_proj: 0.5, v_proj: 0.25 }): RunResult => ({
  name,
  method,
  rank,
  seed,
  trainable: method === "full" ? 1_000_000 : 40_000,
  total: 1_000_000,
  before: 5,
  after,
  bitsBefore: 2,
  bitsAfter: (2 * after) / 5,
  tokensPerSecond: 1234.4,
  seconds: 50,
  correlation,
});

const runs = [
  run("dora-r8-s0", "dora", 8, 0, 4.1, { q_proj: -0.2, v_proj: 0.1 }),
  run("dora-r8-s1", "dora", 8, 1, 4.3, { q_proj: -0.4, v_proj: 0.3 }),
  run("lora-r8-s0", "lora", 8, 0, 4.4),
  run("lora-r8-s1", "lora", 8, 1, 4.6),
  run("full-s0", "full", null, 0, 3.9, { q_proj: NaN, v_proj: 0.9 }),
];

/** The cells of each body row of a markdown table. */
const rowsOf = (table: string) =>
  table
    .split("\n")
    .slice(2)
    .map((l) => l.slice(2, -2).split(" | "));

describe("figures", () => {
  it("bits/byte shares the total information of the tokens out over their bytes", () => {
    // a uniform guess over 256 byte tokens: 8 bits per byte
    expect(bitsPerByte(Math.log(256), 100, 100)).toBeCloseTo(8, 12);
    // tokens of 4 bytes each: a quarter of the bits per token
    expect(bitsPerByte(Math.LN2 * 6, 1000, 4000)).toBeCloseTo(1.5, 12);
    expect(() => bitsPerByte(1, 0, 10)).toThrow(ReportError);
  });

  it("mean ± sample sd, a single value without the ±, and – for no finite value", () => {
    expect(meanSd([1, 2, 3])).toEqual({ mean: 2, sd: 1, n: 3 });
    expect(formatMeanSd([1, 2, 3], 2)).toBe("2.00 ± 1.00");
    expect(formatMeanSd([4.5], 1)).toBe("4.5");
    expect(formatMeanSd([NaN, 0.5], 2)).toBe("0.50");
    expect(formatMeanSd([NaN], 2)).toBe("–");
    expect(() => meanSd([])).toThrow(ReportError);
    expect(formatCount(1_234_567)).toBe("1.23M");
    expect(formatCount(45_600)).toBe("45.6k");
    expect(formatCount(789)).toBe("789");
  });

  it("groups runs by method and rank in the order they ran", () => {
    expect(groupRuns(runs).map((g) => [g.label, g.runs.length])).toEqual([["dora r8", 2], ["lora r8", 2], ["full", 1]]);
  });
});

describe("tables", () => {
  it("summary: one row per method and rank, mean ± sd over seeds, the lowest mean loss in bold", () => {
    const table = summaryTable(runs);
    expect(table.split("\n")[0]).toBe("| method | seeds | trainable | bits/byte before | loss after (nats/token) | bits/byte after | tokens/s | seconds |");
    const rows = rowsOf(table);
    expect(rows.map((r) => r[0])).toEqual(["dora r8", "lora r8", "full"]);
    // equal values across seeds still say so (± 0)
    expect(rows[0]).toEqual(["dora r8", "2", "40.0k (4.00%)", "2.000 ± 0.000", "4.200 ± 0.141", "1.680 ± 0.057", "1234 ± 0", "50.0 ± 0.0"]);
    expect(rows[2]![4]).toBe("**3.900**");
    expect(rows[2]![2]).toBe("1.00M (100.00%)");
  });

  it("every run: one row each, refusing a missing figure by run and field", () => {
    const rows = rowsOf(runsTable(runs));
    expect(rows.map((r) => r[0])).toEqual(runs.map((r) => r.name));
    expect(rows[0]).toEqual(["dora-r8-s0", "40.0k (4.00%)", "5.0000", "4.1000", "2.0000", "1.6400", "1234", "50.0"]);
    expect(() => runsTable([{ ...runs[0]!, after: NaN }])).toThrow(/dora-r8-s0\.after must be a non-negative number, found NaN/);
  });

  it("correlations: a column per module, mean ± sd over seeds, – where r is undefined", () => {
    const rows = rowsOf(correlationTable(runs));
    expect(rows).toEqual([
      ["dora r8", "-0.30 ± 0.14", "0.20 ± 0.14"],
      ["lora r8", "0.50 ± 0.00", "0.25 ± 0.00"],
      ["full", "–", "0.90"],
    ]);
    expect(() => correlationTable([{ ...runs[0]!, correlation: {} }])).toThrow(ReportError);
  });

  it("escapes pipes and newlines in cells and checks the alignments", () => {
    expect(markdownTable(["a"], ["l"], [["x|y\nz"]])).toBe("| a |\n|:---|\n| x\\|y z |");
    expect(() => markdownTable(["a", "b"], ["l"], [])).toThrow(ReportError);
  });
});

describe("samplesMarkdown", () => {
  it("groups continuations by prompt, each in a fence its text cannot close", () => {
    const md = samplesMarkdown(
      [
        { model: "base", prompt: "Call me", text: " Congress ```" },
        { model: "dora r8", prompt: "Call me", text: " Ishmael." },
        { model: "base", prompt: "The whale", text: " of the Union" },
      ],
      "temperature 0.8",
    );
    expect(md.match(/^## /gm)!.length).toBe(2);
    expect(md).toContain("temperature 0.8");
    expect(md).toContain("**dora r8**");
    expect(md).toContain("````text\nCall me Congress ```\n````");
    expect(md).toContain("```text\nCall me Ishmael.\n```");
    expect(md.indexOf("The whale")).toBeGreaterThan(md.indexOf("Ishmael"));
  });
});
