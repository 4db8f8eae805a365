// The SVG charts parse as XML and hold what they were given: one line per series with one vertex
// per finite point, one marker per (layer, step) in each method's panel, legends, titles, and
// positions ordered as the data.
import { describe, expect, it } from "vitest";
import { withSeed } from "../../../packages/core/test/support/random.js";
import { ReportError, decompositionScatterSvg, lineChartSvg, niceTicks, tickLabels, type MethodAnalysis } from "../src/index.js";
import { parseSvg, translation, type SvgElement } from "./support/svg.js";

const attr = (e: SvgElement, name: string) => e.getAttribute(name) ?? "";
const vertices = (polyline: SvgElement) => attr(polyline, "points").split(" ").map((p) => p.split(",").map(Number) as [number, number]);

describe("niceTicks", () => {
  it("covers the range with steps of 1, 2 or 5 × 10^k and round values", () =>
    withSeed((rng) => {
      for (let i = 0; i < 200; i++) {
        const lo = rng.uniform(-1e3, 1e3) * 10 ** rng.int(-6, 3);
        // widths down to a millionth of the values: narrower ranges are below what a chart can show
        const hi = lo + Math.max(rng.uniform(0.01, 10) * 10 ** rng.int(-6, 3), 1e-6 * Math.abs(lo));
        const { ticks, step } = niceTicks(lo, hi);
        const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-12);
        expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9)).toBe(true);
        expect(ticks[0]).toBeLessThanOrEqual(lo + 1e-12 * Math.abs(lo));
        expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(hi - 1e-12 * Math.abs(hi));
        expect(ticks.length).toBeGreaterThanOrEqual(3);
        expect(ticks.length).toBeLessThanOrEqual(12);
        ticks.forEach((t, j) => j > 0 && expect(Math.abs(t - ticks[j - 1]! - step)).toBeLessThan(1e-6 * step));
      }
    }));

  it("gives exact decimal ticks, widens a single value, and shares one exponent for tiny values", () => {
    expect(niceTicks(0, 1).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 3).ticks).toEqual([2.6, 2.8, 3, 3.2, 3.4]);
    const tiny = niceTicks(2e-5, 1.3e-4);
    expect(tickLabels(tiny.ticks, tiny.step)).toEqual({ labels: ["0", "0.5", "1.0", "1.5"], exponent: -4, note: " (×10⁻⁴)" });
    expect(tickLabels([0, 0.5, 1], 0.5)).toEqual({ labels: ["0", "0.5", "1.0"], exponent: 0, note: "" });
  });
});

describe("lineChartSvg", () => {
  const series = [
    { name: "full <FT> & co", points: [[0, 5.5], [10, 4], [20, 3.25], [30, NaN], [40, 2.5]] as [number, number][] },
    { name: "LoRA", points: [[0, 5.5], [10, 4.5], [20, 4], [30, 3.5], [40, 3.25]] as [number, number][] },
    { name: "DoRA (validation)", points: [[0, 5.4], [20, 3.6], [40, 2.9]] as [number, number][], dashed: true, markers: true },
  ];
  const svg = parseSvg(lineChartSvg({ title: "loss on Moby Dick", yLabel: "bits/byte", series }));

  it("parses as SVG with one line per series, one vertex per finite point, legend entries by name", () => {
    expect(svg.root.tagName).toBe("svg");
    expect(attr(svg.root, "xmlns")).toBe("http://www.w3.org/2000/svg");
    const groups = svg.byClass("series");
    expect(groups.map((g) => attr(g, "data-name"))).toEqual(series.map((s) => s.name));
    expect(svg.byTag("polyline").length).toBe(3);
    expect(groups.map((g) => vertices(g.getElementsByTagName("polyline")[0]!).length)).toEqual([4, 5, 3]); // the NaN is left out
    expect(svg.byClass("marker").length).toBe(3);
    const legend = svg.byClass("legend-entry").map((e) => e.getElementsByTagName("text")[0]!.textContent);
    expect(legend).toEqual(series.map((s) => s.name)); // escaped on the way out, the same text on the way in
    expect(svg.byTag("title")[0]!.textContent).toBe("loss on Moby Dick");
    expect(svg.byClass("label").map((e) => e.textContent)).toEqual(["step", "bits/byte"]);
  });

  it("places vertices in the data's order: x grows with the step, y falls as the loss grows", () => {
    const frame = svg.byTag("rect").find((r) => attr(r, "stroke") === "#333")!;
    const [fx, fy, fw, fh] = ["x", "y", "width", "height"].map((k) => Number(attr(frame, k)));
    for (const [i, g] of svg.byClass("series").entries()) {
      const v = vertices(g.getElementsByTagName("polyline")[0]!);
      const data = series[i]!.points.filter(([, y]) => Number.isFinite(y));
      for (let j = 1; j < v.length; j++) {
        expect(v[j]![0]).toBeGreaterThan(v[j - 1]![0]);
        expect(Math.sign(v[j]![1] - v[j - 1]![1])).toBe(-Math.sign(data[j]![1] - data[j - 1]![1]));
      }
      for (const [x, y] of v) expect(x >= fx! && x <= fx! + fw! && y >= fy! && y <= fy! + fh!).toBe(true);
    }
    const ticks = svg.byClass("tick").filter((t) => attr(t, "class").includes("y")).map((t) => Number(t.textContent));
    expect(ticks.every(Number.isFinite)).toBe(true);
    expect(Math.min(...ticks)).toBeLessThanOrEqual(2.5);
    expect(Math.max(...ticks)).toBeGreaterThanOrEqual(5.5);
  });

  it("refuses a chart with no finite point", () => {
    expect(() => lineChartSvg({ title: "empty", series: [{ name: "a", points: [[0, NaN]] }] })).toThrow(ReportError);
  });
});

describe("decompositionScatterSvg", () => {
  const layers = ["blocks.0.attn.q", "blocks.0.attn.v", "blocks.1.attn.q"];
  const make = (method: string, correlation: number, f: (k: number, l: number) => [number, number]): MethodAnalysis => ({
    method,
    correlation,
    points: [50, 100, 150, 200].flatMap((step, k) => layers.map((layer, l) => ({ layer, step, dD: f(k, l)[0], dM: f(k, l)[1] }))),
  });
  const results = [
    make("FT", -0.62, (k, l) => [1e-4 * (1 + k) + 1e-5 * l, 0.05 * (4 - k) + 0.01 * l]),
    make("LoRA", 0.83, (k, l) => [2e-5 * (1 + k) * (1 + l), 0.001 * (1 + k)]),
    make("DoRA", NaN, (k, l) => [3e-5 * (1 + k + l), 0.004]),
  ];
  const svg = parseSvg(decompositionScatterSvg(results));

  it("draws one panel per method with one marker per (layer, step), correlation in the title", () => {
    const panels = svg.byClass("panel");
    expect(panels.map((p) => attr(p, "data-method"))).toEqual(["FT", "LoRA", "DoRA"]);
    for (const p of panels) {
      const points = Array.from(p.getElementsByTagName("*")).filter((e) => attr(e, "class") === "point");
      expect(points.length).toBe(12);
      expect(new Set(points.map((e) => `${attr(e, "data-layer")}@${attr(e, "data-step")}`)).size).toBe(12);
    }
    expect(svg.byClass("panel-title").map((t) => t.textContent)).toEqual(["FT (r = −0.62)", "LoRA (r = 0.83)", "DoRA (r undefined)"]);
    expect(svg.byClass("legend-step").map((e) => e.getElementsByTagName("text")[0]!.textContent)).toEqual(["step 50", "step 100", "step 150", "step 200"]);
    expect(svg.byClass("legend-layer").map((e) => e.getElementsByTagName("text")[0]!.textContent)).toEqual(layers);
  });

  it("colours by step and shapes by layer, and places markers in the data's order", () => {
    const points = svg.byClass("point");
    const fillOf = new Map<string, Set<string>>();
    const shapeOf = new Map<string, Set<string>>();
    for (const e of points) {
      const step = attr(e, "data-step");
      const layer = attr(e, "data-layer");
      fillOf.set(step, (fillOf.get(step) ?? new Set()).add(attr(e, "fill") || attr(e, "stroke")));
      shapeOf.set(layer, (shapeOf.get(layer) ?? new Set()).add(e.tagName + attr(e, "d")));
    }
    expect([...fillOf.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...fillOf.values()].map((s) => [...s][0])).size).toBe(4);
    expect([...shapeOf.values()].every((s) => s.size === 1)).toBe(true);
    expect(new Set([...shapeOf.values()].map((s) => [...s][0])).size).toBe(3);
    // FT: ΔD grows with the step (x right), ΔM falls (y down the page means smaller y value: larger pixel y)
    const ft = points.filter((e) => attr(e, "data-method") === "FT" && attr(e, "data-layer") === layers[0]);
    const xy = ft.map(translation);
    for (let k = 1; k < xy.length; k++) {
      expect(xy[k]![0]).toBeGreaterThan(xy[k - 1]![0]);
      expect(xy[k]![1]).toBeGreaterThan(xy[k - 1]![1]);
    }
  });

  it("refuses to draw no methods", () => {
    expect(() => decompositionScatterSvg([])).toThrow(/expected at least one method/);
  });
});
