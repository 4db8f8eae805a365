// The command line: defaults, every flag's parsing and its refusals, and the runs a set of
// flags asks for.
import { describe, expect, it } from "vitest";
import { DEFAULTS, UsageError, defaultRunName, parseFlags, runName, runSpecs, type JobOptions } from "../src/index.js";

const options = (argv: string[]): JobOptions => {
  const p = parseFlags(argv);
  if ("help" in p) throw new Error("expected options, got the usage");
  return p.options;
};

describe("parseFlags", () => {
  it("gives the defaults with no flags: Moby Dick on the shipped base, three methods at rank 8, one seed", () => {
    expect(options([])).toEqual(DEFAULTS);
    expect(DEFAULTS).toMatchObject({ model: "models/sotu-llama", data: null, methods: ["dora", "lora", "full"], ranks: [8], seeds: [0], batch: 4, seq: 128 });
  });

  it("reads lists, numbers and paths, in either --flag value or --flag=value form", () => {
    const o = options(["--ranks", "4,16", "--seeds=0,1,2", "--steps", "50", "--lr", "1e-3", "--lr-full=5e-5", "--model", "my/model", "--data", "notes.txt", "--methods", "lora,dora", "--run", "exp_1"]);
    expect(o).toMatchObject({ ranks: [4, 16], seeds: [0, 1, 2], steps: 50, lr: 1e-3, lrFull: 5e-5, model: "my/model", data: "notes.txt", methods: ["lora", "dora"], run: "exp_1" });
  });

  it("returns the usage for --help, naming every flag", () => {
    const p = parseFlags(["--steps", "3", "--help"]);
    expect("help" in p).toBe(true);
    const help = (p as { help: string }).help;
    for (const f of ["--model", "--data", "--ranks", "--seeds", "--steps", "--methods", "--lr", "--lr-full", "--out", "--run"]) expect(help).toContain(f);
  });

  it.each([
    [["--bogus"], /unknown flag "--bogus"/],
    [["--steps"], /--steps needs a value/],
    [["--steps", "--ranks", "4"], /--steps needs a value/],
    [["--steps", "0"], /--steps must be a whole number ≥ 1, found "0"/],
    [["--steps", "2.5"], /whole number/],
    [["--ranks", "4,,8"], /comma-separated list/],
    [["--ranks", "4,4"], /lists a value twice/],
    [["--methods", "qlora"], /expected dora, lora or full, found "qlora"/],
    [["--lr", "-1"], /--lr must be a positive number/],
    [["--val-fraction", "1"], /in \(0, 1\)/],
    [["--run", "../x"], /--run must be letters/],
  ])("refuses %j with a UsageError that says what it expected", (argv, message) => {
    expect(() => parseFlags(argv)).toThrow(UsageError);
    expect(() => parseFlags(argv)).toThrow(message);
  });
});

describe("runSpecs", () => {
  it("runs every (adapter method, rank, seed), and full fine-tuning once per seed", () => {
    const specs = runSpecs({ methods: ["dora", "lora", "full"], ranks: [4, 16], seeds: [0, 1] });
    expect(specs.map(runName)).toEqual(["dora-r4-s0", "dora-r4-s1", "dora-r16-s0", "dora-r16-s1", "lora-r4-s0", "lora-r4-s1", "lora-r16-s0", "lora-r16-s1", "full-s0", "full-s1"]);
  });

  it("names the default run folder by the settings that tell runs apart", () => {
    expect(defaultRunName(DEFAULTS)).toBe("sotu-llama-steps100-r8-seed0");
    expect(defaultRunName({ ...DEFAULTS, model: "models/mine/", ranks: [4, 16], seeds: [0, 1, 2], data: "x.txt" })).toBe("mine-steps100-r4_16-seed0_1_2-data");
  });
});
