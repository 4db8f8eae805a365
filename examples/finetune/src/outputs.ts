// What a finished run writes next to its checkpoints: results.md (the table, the base model's
// scores, forgetting, timings, the ΔM/ΔD correlations), loss.svg (fine-tuning curves),
// pretrain.svg, analysis.svg (the paper's scatter) and samples.md.
import { bitsPerByte } from "./data.js";
import { decompositionScatterSvg, lineChartSvg, type LineSeries } from "./plot.js";
import { formatAnalysis, type MethodAnalysis } from "./analysis.js";
import { markdownTable, resultsMarkdown, samplesMarkdown, writeText, type MethodResult, type RunPaths, type Sample } from "./report.js";
import type { PhaseResult } from "./train.js";
import { CATEGORICAL } from "./plot.js";

export interface MethodRun {
  readonly result: MethodResult;
  readonly phase: PhaseResult;
  /** Validation loss on the pretraining corpus after fine-tuning (forgetting). */
  readonly sourceValidation: number;
}

export interface RunRecord {
  readonly run: string;
  readonly machine: string;
  readonly command: string;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly pretrain: PhaseResult;
  /** The pretrained model's validation loss on both corpora. */
  readonly base: { readonly source: number; readonly target: number };
  readonly methods: readonly MethodRun[];
  readonly analysis: readonly MethodAnalysis[];
  readonly samples: readonly Sample[];
  readonly seconds: Readonly<Record<string, number>>;
}

/** Exponential moving average of a noisy series (per-step training loss), bias-corrected from the first point. */
export function smooth(points: readonly (readonly [number, number])[], beta = 0.9): [number, number][] {
  let avg = 0;
  return points.map(([x, y], i) => {
    avg = beta * avg + (1 - beta) * y;
    return [x, avg / (1 - beta ** (i + 1))];
  });
}

const bpb = (points: readonly (readonly [number, number])[]): [number, number][] => points.map(([x, y]) => [x, bitsPerByte(y)]);
const fixed = (v: number, d = 3) => v.toFixed(d);

export function lossChart(r: RunRecord): string {
  const series: LineSeries[] = r.methods.flatMap((m, i) => [
    { name: `${m.result.method} train (EMA)`, points: bpb(smooth(m.phase.train)), color: CATEGORICAL[i]! },
    { name: `${m.result.method} validation`, points: bpb(m.phase.validation), color: CATEGORICAL[i]!, dashed: true, markers: true },
  ]);
  return lineChartSvg({ title: "Fine-tuning on Moby Dick (same steps, batches and rank)", yLabel: "bits per byte", series });
}

export function pretrainChart(r: RunRecord): string {
  return lineChartSvg({
    title: "Pretraining on the State of the Union addresses",
    yLabel: "bits per byte",
    series: [
      { name: "train (EMA)", points: bpb(smooth(r.pretrain.train)) },
      { name: "validation", points: bpb(r.pretrain.validation), dashed: true, markers: true },
    ],
  });
}

export function resultsPage(r: RunRecord): string {
  const head = resultsMarkdown(r.run, r.methods.map((m) => m.result), { machine: r.machine, settings: r.settings });
  const forgetting = markdownTable(
    ["model", "Moby Dick validation (bits/byte)", "State of the Union validation (bits/byte)"],
    ["l", "r", "r"],
    [
      ["base (pretrained)", fixed(bitsPerByte(r.base.target)), fixed(bitsPerByte(r.base.source))],
      ...r.methods.map((m) => [m.result.method, fixed(bitsPerByte(m.result.validationLoss)), fixed(bitsPerByte(m.sourceValidation))]),
    ],
  );
  const correlations = r.analysis.map((a) => `${a.method} ${Number.isNaN(a.correlation) ? "undefined" : a.correlation.toFixed(3)}`).join(", ");
  const seconds = Object.entries(r.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ");
  return [
    head.trimEnd(),
    "",
    "Step time is the median wall time of a training step (queue it, run it, read its loss back); peak memory is the GPU memory the",
    "compiled training step allocates (its plan's buffers: parameters, optimizer state, inputs and the activation arena).",
    "",
    "## Before and after",
    "",
    "The same held-out bytes for every model: the last 10% of each corpus. The State of the Union column shows how much of",
    "the pretraining domain each method gives up.",
    "",
    forgetting,
    "",
    "## Weight decomposition (ΔM, ΔD)",
    "",
    `Query and value projections of every block, at each saved checkpoint, against the pretrained weights (analysis.svg).`,
    `Correlation r(ΔD, ΔM): ${correlations}.`,
    "",
    "```text",
    formatAnalysis(r.analysis),
    "```",
    "",
    "## Time",
    "",
    `${seconds}.`,
    "",
    "Command:",
    "",
    "```sh",
    r.command,
    "```",
    "",
  ].join("\n");
}

/** Writes results.md, loss.svg, pretrain.svg, analysis.svg and samples.md. */
export async function writeOutputs(paths: RunPaths, r: RunRecord): Promise<void> {
  await writeText(paths.results, resultsPage(r));
  await writeText(paths.lossPlot, lossChart(r));
  await writeText(paths.pretrainPlot, pretrainChart(r));
  await writeText(paths.analysisPlot, decompositionScatterSvg(r.analysis, { title: "Magnitude (ΔM) and direction (ΔD) updates of q and v across checkpoints" }));
  await writeText(paths.samples, samplesMarkdown(r.samples));
}
