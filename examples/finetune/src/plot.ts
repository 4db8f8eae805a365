// Charts as SVG text, without dependencies: loss curves (several series over steps) and the DoRA
// paper's scatter of ΔD against ΔM (one panel per method, colour = step, marker = layer).
// Output is meant to be read by a person: nice tick values, grid lines, axis labels, a legend
// outside the plot area, colour-blind-safe colours. Non-finite values (a diverged loss) are
// left out of a line rather than drawn off the chart.
import type { MethodAnalysis } from "./analysis.js";
import { ReportError } from "./errors.js";

type Attrs = Record<string, string | number | undefined>;

const escapeXml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);

/** One element; `children` are already-built elements, or text (escaped here). */
function el(name: string, attrs: Attrs, children: readonly string[] | string = []): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeXml(typeof v === "number" ? fmtCoord(v) : v!)}"`)
    .join("");
  const body = typeof children === "string" ? escapeXml(children) : children.join("");
  return body === "" ? `<${name}${a}/>` : `<${name}${a}>${body}</${name}>`;
}

const fmtCoord = (v: number): string => String(Math.round(v * 100) / 100);

function svgDocument(width: number, height: number, title: string, body: readonly string[]): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    el(
      "svg",
      { xmlns: "http://www.w3.org/2000/svg", width, height, viewBox: `0 0 ${width} ${height}`, "font-family": "Helvetica, Arial, sans-serif", "font-size": 12 },
      [el("title", {}, title), el("rect", { width, height, fill: "white" }), ...body],
    ) +
    "\n"
  );
}

/** Evenly spaced round tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; lo: number; hi: number; step: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new ReportError(`niceTicks: expected a finite range, found [${lo}, ${hi}]`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw * 0.999)!;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  // multiply rather than accumulate, then round to the step's decimals: 3 · 0.1 is 0.3, not 0.30000000000000004
  const decimals = Math.min(100, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return { ticks, lo: ticks[0]!, hi: ticks[ticks.length - 1]!, step };
}

/** A tick label: as many decimals as the step needs ("0.25", "1200"). */
export function formatTick(v: number, step: number): string {
  if (v === 0) return "0";
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

const SUPERSCRIPT: Record<string, string> = { "-": "⁻", "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹" };

/**
 * Labels for an axis's ticks. Tiny or huge values share one power of ten, returned as
 * `exponent` for the axis label ("ΔD (×10⁻⁴)"), so the ticks read 0, 0.5, 1.0 rather than
 * mixing "5e-5" with "1.0e-4"; otherwise `exponent` is 0.
 */
export function tickLabels(ticks: readonly number[], step: number): { labels: string[]; exponent: number; note: string } {
  const top = Math.max(...ticks.map(Math.abs));
  const decimals = -Math.floor(Math.log10(step) + 1e-9);
  if (decimals <= 4 && top < 1e6) return { labels: ticks.map((t) => formatTick(t, step)), exponent: 0, note: "" };
  const exponent = Math.floor(Math.log10(top) + 1e-9);
  const labels = ticks.map((t) => formatTick(Number((t / 10 ** exponent).toPrecision(12)), step / 10 ** exponent));
  return { labels, exponent, note: ` (×10${[...String(exponent)].map((c) => SUPERSCRIPT[c]).join("")})` };
}

// Tableau 10: distinct hues for unordered things (series, methods).
export const CATEGORICAL = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"];
// Stops of viridis: an ordered scale for ordered things (training steps), readable in grey too.
const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

/** Colour `i` of `n` along viridis, stopping before its pale yellow end (hard to see on white). */
export function sequentialColor(i: number, n: number): string {
  const t = n <= 1 ? 0 : (i / (n - 1)) * 0.85;
  const x = t * (VIRIDIS.length - 1);
  const k = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const [a, b] = [VIRIDIS[k]!, VIRIDIS[k + 1]!].map((c) => [1, 3, 5].map((j) => parseInt(c.slice(j, j + 2), 16)));
  return "#" + a!.map((v, j) => Math.round(v + (b![j]! - v) * (x - k)).toString(16).padStart(2, "0")).join("");
}

interface Frame {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

interface Axes {
  readonly sx: (v: number) => number;
  readonly sy: (v: number) => number;
  readonly svg: string[];
}

// A loop, not Math.min(...xs): a long training curve would overflow the argument stack.
function extent(xs: readonly number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of xs) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

/** `[lo, hi]` widened by `fraction` of its width on each side (so markers clear the frame). */
function pad([lo, hi]: [number, number], fraction: number): [number, number] {
  const d = (hi - lo) * fraction;
  return [lo - d, hi + d];
}

/** Grid, ticks, tick labels, axis labels and a title for one plot area. */
function drawAxes(f: Frame, x: [number, number], y: [number, number], labels: { x: string; y: string; title: string }): Axes {
  const tx = niceTicks(...x, Math.max(2, Math.round(f.width / 90)));
  const ty = niceTicks(...y, Math.max(2, Math.round(f.height / 60)));
  const sx = (v: number) => f.x + ((v - tx.lo) / (tx.hi - tx.lo)) * f.width;
  const sy = (v: number) => f.y + f.height - ((v - ty.lo) / (ty.hi - ty.lo)) * f.height;
  const lx = tickLabels(tx.ticks, tx.step);
  const ly = tickLabels(ty.ticks, ty.step);
  const svg: string[] = [];
  const grid = { stroke: "#e5e5e5", "stroke-width": 1 };
  tx.ticks.forEach((t, i) => {
    svg.push(el("line", { x1: sx(t), x2: sx(t), y1: f.y, y2: f.y + f.height, ...grid }));
    svg.push(el("text", { class: "tick x", x: sx(t), y: f.y + f.height + 16, "text-anchor": "middle", fill: "#333" }, lx.labels[i]!));
  });
  ty.ticks.forEach((t, i) => {
    svg.push(el("line", { x1: f.x, x2: f.x + f.width, y1: sy(t), y2: sy(t), ...grid }));
    svg.push(el("text", { class: "tick y", x: f.x - 6, y: sy(t) + 4, "text-anchor": "end", fill: "#333" }, ly.labels[i]!));
  });
  svg.push(el("rect", { x: f.x, y: f.y, width: f.width, height: f.height, fill: "none", stroke: "#333" }));
  svg.push(el("text", { class: "label x", x: f.x + f.width / 2, y: f.y + f.height + 38, "text-anchor": "middle" }, labels.x + lx.note));
  const my = f.y + f.height / 2;
  const yl = labels.y + ly.note;
  svg.push(el("text", { class: "label y", x: f.x - 52, y: my, "text-anchor": "middle", transform: `rotate(-90 ${fmtCoord(f.x - 52)} ${fmtCoord(my)})` }, yl));
  svg.push(el("text", { class: "panel-title", x: f.x + f.width / 2, y: f.y - 10, "text-anchor": "middle", "font-weight": "bold" }, labels.title));
  return { sx, sy, svg };
}

export interface LineSeries {
  readonly name: string;
  /** [step, value] pairs. */
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly color?: string;
  /** Dashed line (e.g. validation next to training). */
  readonly dashed?: boolean;
  /** Draw a dot at every point (for sparse series such as periodic evaluations). */
  readonly markers?: boolean;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly series: readonly LineSeries[];
  readonly width?: number;
  readonly height?: number;
}

/** Loss curves: one polyline per series (class "series", data-name), a legend on the right. */
export function lineChartSvg(chart: LineChart): string {
  const { title, xLabel = "step", yLabel = "loss", series, width = 760, height = 420 } = chart;
  const finite = series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const all = finite.flat();
  if (all.length === 0) throw new ReportError(`lineChartSvg "${title}": expected at least one finite point, found none in ${series.length} series`);
  const legendWidth = Math.min(220, 40 + 7 * Math.max(...series.map((s) => s.name.length)));
  const frame = { x: 72, y: 40, width: width - 72 - legendWidth - 24, height: height - 40 - 56 };
  const axes = drawAxes(frame, extent(all.map((p) => p[0])), pad(extent(all.map((p) => p[1])), 0.03), { x: xLabel, y: yLabel, title });
  const body = [...axes.svg];
  const legend: string[] = [];
  series.forEach((s, i) => {
    const color = s.color ?? CATEGORICAL[i % CATEGORICAL.length]!;
    const dash = s.dashed ? "6 4" : undefined;
    const pts = finite[i]!.map(([x, y]) => `${fmtCoord(axes.sx(x))},${fmtCoord(axes.sy(y))}`).join(" ");
    const dots = s.markers ? finite[i]!.map(([x, y]) => el("circle", { class: "marker", cx: axes.sx(x), cy: axes.sy(y), r: 3, fill: color })) : [];
    body.push(
      el("g", { class: "series", "data-name": s.name }, [
        el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.8, "stroke-dasharray": dash, "stroke-linejoin": "round" }),
        ...dots,
      ]),
    );
    const ly = frame.y + 8 + i * 20;
    const lx = frame.x + frame.width + 16;
    legend.push(
      el("g", { class: "legend-entry" }, [
        el("line", { x1: lx, x2: lx + 24, y1: ly, y2: ly, stroke: color, "stroke-width": 2.5, "stroke-dasharray": dash }),
        el("text", { x: lx + 30, y: ly + 4 }, s.name),
      ]),
    );
  });
  body.push(el("g", { class: "legend" }, legend));
  return svgDocument(width, height, title, body);
}

// Marker shapes for layers, centred on (0, 0); about 9 px across.
const SHAPES: ReadonlyArray<(fill: string) => [string, Attrs]> = [
  (fill) => ["circle", { r: 4.5, fill }],
  (fill) => ["rect", { x: -4, y: -4, width: 8, height: 8, fill }],
  (fill) => ["path", { d: "M0,-5 L4.8,3.5 L-4.8,3.5 Z", fill }],
  (fill) => ["path", { d: "M0,-5.5 L5,0 L0,5.5 L-5,0 Z", fill }],
  (fill) => ["path", { d: "M-5,-5 L5,5 M5,-5 L-5,5", stroke: fill, "stroke-width": 2.2, fill: "none" }],
  (fill) => ["path", { d: "M0,-5 L1.5,-1.5 L5,-1.5 L2.3,1 L3.2,5 L0,2.6 L-3.2,5 L-2.3,1 L-5,-1.5 L-1.5,-1.5 Z", fill }],
  (fill) => ["path", { d: "M0,5 L4.8,-3.5 L-4.8,-3.5 Z", fill }],
  (fill) => ["path", { d: "M0,-5.5 L0,5.5 M-5.5,0 L5.5,0", stroke: fill, "stroke-width": 2.2, fill: "none" }],
];

/** Shape k: SHAPES[k] filled, then each again drawn hollow, so 16 layers get distinct markers. */
function marker(shape: number, x: number, y: number, fill: string, attrs: Attrs): string {
  let [name, a] = SHAPES[shape % SHAPES.length]!(fill);
  if (Math.floor(shape / SHAPES.length) % 2 === 1) a = a.fill === "none" ? { ...a, "stroke-width": 1.2 } : { ...a, fill: "none", stroke: fill, "stroke-width": 1.5 };
  return el(name, { ...attrs, ...a, transform: `translate(${fmtCoord(x)} ${fmtCoord(y)})`, "fill-opacity": a.fill === "none" ? undefined : 0.9 });
}

const fmtR = (r: number): string => (Number.isNaN(r) ? "r undefined" : `r = ${r.toFixed(2).replace("-", "−")}`);

export interface ScatterOptions {
  readonly title?: string;
  readonly panelWidth?: number;
  readonly panelHeight?: number;
}

/**
 * The paper's figure: one panel per method, ΔD on x, ΔM on y, every (layer, step) a marker
 * (class "point", data-method/-layer/-step), colour by step, shape by layer; each panel's title
 * gives the correlation. Panels have their own scales (methods differ by orders of magnitude).
 */
export function decompositionScatterSvg(results: readonly MethodAnalysis[], options: ScatterOptions = {}): string {
  const { title = "Magnitude and direction updates", panelWidth = 330, panelHeight = 300 } = options;
  if (results.length === 0) throw new ReportError("decompositionScatterSvg: expected at least one method, found none");
  const steps = [...new Set(results.flatMap((r) => r.points.map((p) => p.step)))].sort((a, b) => a - b);
  const layers = [...new Set(results.flatMap((r) => r.points.map((p) => p.layer)))].sort();
  const color = (step: number) => sequentialColor(steps.indexOf(step), steps.length);
  const legendRows = Math.max(steps.length, layers.length);
  const width = 24 + results.length * (panelWidth + 24);
  const top = 64;
  const height = top + panelHeight + 60 + 24 + legendRows * 18 + 16;
  const body = [el("text", { class: "title", x: width / 2, y: 24, "text-anchor": "middle", "font-size": 16, "font-weight": "bold" }, title)];
  results.forEach((r, i) => {
    const frame = { x: 24 + i * (panelWidth + 24) + 64, y: top, width: panelWidth - 72, height: panelHeight };
    const pts = r.points.filter((p) => Number.isFinite(p.dD) && Number.isFinite(p.dM));
    if (pts.length === 0) throw new ReportError(`decompositionScatterSvg: method "${r.method}" has no finite points`);
    const axes = drawAxes(frame, pad(extent(pts.map((p) => p.dD)), 0.05), pad(extent(pts.map((p) => p.dM)), 0.05), { x: "ΔD", y: "ΔM", title: `${r.method} (${fmtR(r.correlation)})` });
    const marks = pts.map((p) =>
      marker(layers.indexOf(p.layer), axes.sx(p.dD), axes.sy(p.dM), color(p.step), { class: "point", "data-method": r.method, "data-layer": p.layer, "data-step": p.step }),
    );
    body.push(el("g", { class: "panel", "data-method": r.method, "data-correlation": r.correlation }, [...axes.svg, ...marks]));
  });
  const ly = top + panelHeight + 60;
  const stepLegend = steps.map((s, i) =>
    el("g", { class: "legend-step" }, [
      el("circle", { cx: 40, cy: ly + 18 + i * 18, r: 5, fill: color(s) }),
      el("text", { x: 52, y: ly + 22 + i * 18 }, `step ${s}`),
    ]),
  );
  const layerLegend = layers.map((l, i) =>
    el("g", { class: "legend-layer" }, [marker(i, 200, ly + 18 + i * 18, "#555", {}), el("text", { x: 212, y: ly + 22 + i * 18 }, l)]),
  );
  body.push(
    el("g", { class: "legend" }, [
      el("text", { x: 32, y: ly, "font-weight": "bold" }, "colour: step"),
      el("text", { x: 192, y: ly, "font-weight": "bold" }, "marker: layer"),
      ...stepLegend,
      ...layerLegend,
    ]),
  );
  return svgDocument(width, height, title, body);
}
