// The progress bar with an injected clock: rates over the recent window, the ETA they imply,
// the formats, a TTY line redrawn in place, and periodic plain lines for logs.
import { describe, expect, it } from "vitest";
import { Progress, formatBarLine, formatDuration, formatPlainLine, formatRate, type ProgressStream } from "../src/progress.js";

/** A stream that records what was written, and a clock the test moves by hand. */
function fixture(isTTY: boolean, columns = 100) {
  const writes: string[] = [];
  const stream: ProgressStream = { isTTY, columns, write: (s: string) => writes.push(s) };
  let t = 1_000;
  return { writes, stream, now: () => t, advance: (ms: number) => (t += ms) };
}

describe("formats", () => {
  it("durations read as m:ss or h:mm:ss, unknown as ?", () => {
    expect([0, 7, 59.6, 61, 754, 3600, 3723, 90061].map(formatDuration)).toEqual(["0:00", "0:07", "1:00", "1:01", "12:34", "1:00:00", "1:02:03", "25:01:01"]);
    expect([undefined, Infinity, NaN, -1].map(formatDuration)).toEqual(["?", "?", "?", "?"]);
  });

  it("rates scale to k and M", () => {
    expect([3.14159, 850, 1234, 12345, 1_250_000].map((r) => formatRate(r))).toEqual(["3.1 tok/s", "850 tok/s", "1.23k tok/s", "12.3k tok/s", "1.25M tok/s"]);
    expect(formatRate(undefined)).toBe("? tok/s");
    expect(formatRate(2.5, "steps/s")).toBe("2.5 steps/s");
  });

  it("a bar line fits its columns and fills in proportion to the progress", () => {
    const stats = { step: 25, total: 100, loss: 2.345678, tokensPerSecond: 12345, stepsPerSecond: 2, elapsed: 12.5, eta: 37.5 };
    const line = formatBarLine(stats, 100, "dora");
    expect(line).toBe(`dora  25/100  25% |${"█".repeat(10)}${"░".repeat(30)}| loss 2.3457 | 12.3k tok/s | 0:13<0:38`);
    expect(line.length).toBeLessThan(100);
    const narrow = formatBarLine(stats, 50, "dora");
    expect(narrow.length).toBeLessThan(50);
    expect(narrow).not.toContain("█"); // no room for a bar: the figures, cut to fit
    expect(formatPlainLine(stats, "dora")).toBe("dora step 25/100 (25%) loss 2.3457 12.3k tok/s elapsed 0:13 eta 0:38");
  });
});

describe("Progress", () => {
  it("measures tokens/s and the ETA over the recent window, so a slow first step stops counting", () => {
    const f = fixture(false);
    const p = new Progress({ total: 100, stream: f.stream, now: f.now, window: 4, plainEvery: 1e9 });
    f.advance(10_000); // the first step compiles: 10 s
    p.update(1, { loss: 5, tokens: 1024 });
    expect(p.stats().tokensPerSecond).toBeCloseTo(102.4, 9);
    expect(p.stats().eta).toBeCloseTo(99 * 10, 9);
    for (let s = 2; s <= 10; s++) {
      f.advance(250); // then 4 steps per second
      p.update(s, { loss: 5 - s / 10, tokens: 1024 });
    }
    const st = p.stats();
    expect(st.stepsPerSecond).toBeCloseTo(4, 9);
    expect(st.tokensPerSecond).toBeCloseTo(4096, 9);
    expect(st.eta).toBeCloseTo(90 / 4, 9);
    expect(st.elapsed).toBeCloseTo(12.25, 9);
    expect(st.loss).toBeCloseTo(4, 12);
  });

  it("without a TTY prints the first update, then one plain line per interval, then the last", () => {
    const f = fixture(false);
    const p = new Progress({ total: 40, label: "lora", stream: f.stream, now: f.now, plainEvery: 10_000 });
    for (let s = 1; s <= 40; s++) {
      f.advance(1_000);
      p.update(s, { loss: 3, tokens: 100 });
    }
    p.done();
    p.done();
    // steps 1, 11, 21, 31 (10 s apart) and 40 (the end)
    expect(f.writes.map((w) => /step (\d+)\//.exec(w)![1])).toEqual(["1", "11", "21", "31", "40"]);
    expect(f.writes.every((w) => w.endsWith("\n") && !w.includes("\r") && !w.includes("\x1b"))).toBe(true);
    expect(f.writes[4]).toBe("lora step 40/40 (100%) loss 3.0000 100 tok/s elapsed 0:40 eta 0:00\n");
  });

  it("on a TTY redraws one line in place, keeps logged messages above it, and ends with a newline", () => {
    const f = fixture(true, 120);
    const p = new Progress({ total: 3, stream: f.stream, now: f.now, redrawEvery: 100 });
    f.advance(50);
    p.update(1, { loss: 2, tokens: 10 });
    f.advance(50);
    p.update(2, { loss: 1.5, tokens: 10 }); // 50 ms after the last draw: skipped
    p.log("validation loss 1.70");
    f.advance(500);
    p.update(3, { loss: 1, tokens: 10 });
    p.done();
    expect(f.writes.filter((w) => w.startsWith("\r") && !w.includes("validation")).length).toBe(4); // step 1, redraw after the log, step 3, done
    expect(f.writes).toContain("\r\x1b[Kvalidation loss 1.70\n");
    expect(f.writes[f.writes.length - 1]).toBe("\n");
    expect(f.writes[f.writes.length - 2]).toMatch(/^\r3\/3 100% \|█+\| loss 1.0000 \| .* \| 0:01<0:00\x1b\[K$/);
    expect(f.writes.every((w) => !w.slice(1).includes("\r"))).toBe(true);
  });
});
