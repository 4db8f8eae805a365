// What a job reports, as text: the results tables (one row per run; mean ± sd per method and
// rank over seeds), the ΔD–ΔM correlations, and the samples page. Pure functions of the
// figures, so the tests pin the format.
import { ReportError } from "./errors.js";

/** One fine-tuning run's figures. */
export interface RunResult {
  /** The run's folder name ("dora-r8-s0"). */
  readonly name: string;
  readonly method: string;
  /** Adapter rank; null for full fine-tuning. */
  readonly rank: number | null;
  readonly seed: number;
  readonly trainable: number;
  /** Parameters of the base model. */
  readonly total: number;
  /** Held-out loss (nats/token) before and after training, and the same in bits/byte. */
  readonly before: number;
  readonly after: number;
  readonly bitsBefore: number;
  readonly bitsAfter: number;
  /** Training tokens per second of the steps after the first (which builds the GPU pipelines). */
  readonly tokensPerSecond: number;
  /** Wall-clock seconds of the finetune call: loading, compiling, training, validating, saving. */
  readonly seconds: number;
  /** Pearson's r of ΔD and ΔM over layers and checkpoints, per analysed module ("q_proj": -0.3). */
  readonly correlation: Readonly<Record<string, number>>;
}

/**
 * Bits per byte of a mean loss of `nats` per token over `tokens` tokens that spell `bytes`
 * bytes of UTF-8: the total information, in bits, shared out over the bytes.
 */
export function bitsPerByte(nats: number, tokens: number, bytes: number): number {
  if (!(tokens > 0 && bytes > 0)) throw new ReportError(`bitsPerByte: expected positive token and byte counts, found ${tokens} tokens and ${bytes} bytes`);
  return (nats * tokens) / (bytes * Math.LN2);
}

/** "1.23M", "45.6k", "789". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

const escapeCell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function markdownTable(header: readonly string[], align: readonly ("l" | "r")[], rows: readonly (readonly string[])[]): string {
  if (align.length !== header.length) throw new ReportError(`markdownTable: ${header.length} columns but ${align.length} alignments`);
  const line = (cells: readonly string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  return [line(header), `|${align.map((a) => (a === "r" ? "---:" : ":---")).join("|")}|`, ...rows.map(line)].join("\n");
}

/** Mean and sample standard deviation (n − 1; 0 for one value). */
export function meanSd(xs: readonly number[]): { mean: number; sd: number; n: number } {
  if (xs.length === 0) throw new ReportError("meanSd: expected at least one value, found none");
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, sd, n: xs.length };
}

/** "3.412 ± 0.004" (or "3.412" for one value); "–" for NaN values (an undefined correlation). */
export function formatMeanSd(xs: readonly number[], digits: number): string {
  const finite = xs.filter(Number.isFinite);
  if (finite.length === 0) return "–";
  const { mean, sd, n } = meanSd(finite);
  return n < 2 ? mean.toFixed(digits) : `${mean.toFixed(digits)} ± ${sd.toFixed(digits)}`;
}

/** "dora r8", "full". */
export const groupLabel = (r: Pick<RunResult, "method" | "rank">): string => (r.rank === null ? r.method : `${r.method} r${r.rank}`);

/** Runs grouped by (method, rank), in the order the groups first appear. */
export function groupRuns(runs: readonly RunResult[]): { label: string; runs: RunResult[] }[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) groups.set(groupLabel(r), [...(groups.get(groupLabel(r)) ?? []), r]);
  return [...groups].map(([label, runs]) => ({ label, runs }));
}

const share = (r: RunResult) => `${formatCount(r.trainable)} (${((100 * r.trainable) / r.total).toFixed(2)}%)`;

/**
 * One row per (method, rank): seeds, trainable parameters, held-out loss and bits/byte after
 * training (mean ± sd over seeds), tokens/s and seconds; the lowest mean loss in bold.
 */
export function summaryTable(runs: readonly RunResult[]): string {
  if (runs.length === 0) throw new ReportError("summaryTable: expected at least one run, found none");
  const groups = groupRuns(runs);
  const means = groups.map((g) => meanSd(g.runs.map((r) => r.after)).mean);
  const best = Math.min(...means.filter(Number.isFinite));
  const rows = groups.map((g, i) => {
    const bold = (s: string) => (means[i] === best ? `**${s}**` : s);
    const first = g.runs[0]!;
    return [
      g.label,
      String(g.runs.length),
      share(first),
      formatMeanSd(g.runs.map((r) => r.bitsBefore), 3),
      bold(formatMeanSd(g.runs.map((r) => r.after), 3)),
      bold(formatMeanSd(g.runs.map((r) => r.bitsAfter), 3)),
      formatMeanSd(g.runs.map((r) => r.tokensPerSecond), 0),
      formatMeanSd(g.runs.map((r) => r.seconds), 1),
    ];
  });
  return markdownTable(
    ["method", "seeds", "trainable", "bits/byte before", "loss after (nats/token)", "bits/byte after", "tokens/s", "seconds"],
    ["l", "r", "r", "r", "r", "r", "r", "r"],
    rows,
  );
}

/** One row per run: before and after in nats/token and bits/byte, trainable parameters, tokens/s, seconds. */
export function runsTable(runs: readonly RunResult[]): string {
  if (runs.length === 0) throw new ReportError("runsTable: expected at least one run, found none");
  const rows = runs.map((r) => {
    for (const k of ["before", "after", "bitsBefore", "bitsAfter", "tokensPerSecond", "seconds"] as const) {
      if (!(r[k] >= 0)) throw new ReportError(`runsTable: ${r.name}.${k} must be a non-negative number, found ${r[k]}`);
    }
    return [r.name, share(r), r.before.toFixed(4), r.after.toFixed(4), r.bitsBefore.toFixed(4), r.bitsAfter.toFixed(4), r.tokensPerSecond.toFixed(0), r.seconds.toFixed(1)];
  });
  return markdownTable(
    ["run", "trainable", "loss before", "loss after", "bits/byte before", "bits/byte after", "tokens/s", "seconds"],
    ["l", "r", "r", "r", "r", "r", "r", "r"],
    rows,
  );
}

/** r(ΔD, ΔM) per (method, rank) and module, mean ± sd over seeds. */
export function correlationTable(runs: readonly RunResult[]): string {
  const modules = [...new Set(runs.flatMap((r) => Object.keys(r.correlation)))].sort();
  if (modules.length === 0) throw new ReportError("correlationTable: no run has an analysed module");
  const rows = groupRuns(runs).map((g) => [g.label, ...modules.map((m) => formatMeanSd(g.runs.map((r) => r.correlation[m] ?? NaN), 2))]);
  return markdownTable(["method", ...modules.map((m) => `r(ΔD, ΔM) ${m}`)], ["l", ...modules.map(() => "r" as const)], rows);
}

export interface Sample {
  /** Which model produced it ("base", "dora r8", …). */
  readonly model: string;
  readonly prompt: string;
  /** The continuation only. */
  readonly text: string;
}

/** samples.md: each prompt, then every model's continuation of it in a fenced block. */
export function samplesMarkdown(samples: readonly Sample[], settings: string): string {
  const prompts = [...new Set(samples.map((s) => s.prompt))];
  const out = ["# Samples", "", settings, ""];
  for (const prompt of prompts) {
    out.push(`## ${JSON.stringify(prompt)}`, "");
    for (const s of samples.filter((x) => x.prompt === prompt)) {
      // a fence longer than any backtick run in the text, so generated text cannot close it early
      const fence = "`".repeat(Math.max(3, ...[...s.text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
      out.push(`**${s.model}**`, "", fence + "text", s.prompt + s.text, fence, "");
    }
  }
  return out.join("\n");
}
