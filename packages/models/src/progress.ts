// A training progress bar: one line redrawn in place on a terminal (step/total, loss, tokens/s,
// elapsed and ETA), or, when the output is not a TTY (CI logs, a pipe), a plain line every
// `plainEvery` milliseconds plus the first and the last, so logs stay short and greppable.
// Rates come from a window of recent updates, not the whole run, so the slow first step (kernel
// compilation, warm-up) stops distorting the ETA once it leaves the window.

export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  readonly total: number;
  /** Steps already done (a resumed run): counted as done, not as this run's rate. */
  readonly start?: number;
  /** Shown first on every line (e.g. the method). */
  readonly label?: string;
  readonly stream?: ProgressStream;
  /** Milliseconds; injected by tests. */
  readonly now?: () => number;
  /** Milliseconds between plain lines when the stream is not a TTY. */
  readonly plainEvery?: number;
  /** Milliseconds between redraws on a TTY. */
  readonly redrawEvery?: number;
  /** How many recent updates the rates are measured over. */
  readonly window?: number;
}

export interface ProgressStats {
  readonly step: number;
  readonly total: number;
  readonly loss: number | undefined;
  readonly tokensPerSecond: number | undefined;
  readonly stepsPerSecond: number | undefined;
  /** Seconds since the bar was created. */
  readonly elapsed: number;
  /** Seconds left at the current rate; undefined before any step has been timed. */
  readonly eta: number | undefined;
}

/** "0:07", "12:34", "1:02:03"; "?" for an unknown or infinite duration. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (v: number) => String(v).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

/** "850 tok/s", "12.3k tok/s", "1.25M tok/s"; "? tok/s" when unknown. */
export function formatRate(perSecond: number | undefined, unit = "tok/s"): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return `? ${unit}`;
  if (perSecond < 1000) return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond)} ${unit}`;
  if (perSecond < 1e6) return `${(perSecond / 1e3).toFixed(perSecond < 1e4 ? 2 : 1)}k ${unit}`;
  return `${(perSecond / 1e6).toFixed(2)}M ${unit}`;
}

const fmtLoss = (loss: number | undefined): string => (loss === undefined ? "loss ?" : `loss ${Number.isFinite(loss) ? loss.toFixed(4) : String(loss)}`);

/** The line a TTY shows: a bar sized to fit `columns`, then the figures. */
export function formatBarLine(s: ProgressStats, columns: number, label = ""): string {
  const pct = s.total > 0 ? Math.min(1, s.step / s.total) : 0;
  const head = `${label ? label + " " : ""}${String(s.step).padStart(String(s.total).length)}/${s.total} ${String(Math.floor(pct * 100)).padStart(3)}%`;
  const tail = ` ${fmtLoss(s.loss)} | ${formatRate(s.tokensPerSecond)} | ${formatDuration(s.elapsed)}<${formatDuration(s.eta)}`;
  const room = columns - head.length - tail.length - 4; // leave the last column free: writing there wraps on some terminals
  if (room < 10) return (head + tail).slice(0, Math.max(0, columns - 1));
  const width = Math.min(40, room);
  const filled = Math.floor(pct * width);
  return `${head} |${"█".repeat(filled)}${"░".repeat(width - filled)}|${tail}`;
}

/** The line a log gets: every figure named, no bar, no control characters. */
export function formatPlainLine(s: ProgressStats, label = ""): string {
  const pct = s.total > 0 ? Math.floor(Math.min(1, s.step / s.total) * 100) : 0;
  return (
    `${label ? label + " " : ""}step ${s.step}/${s.total} (${pct}%) ${fmtLoss(s.loss)} ${formatRate(s.tokensPerSecond)} ` +
    `elapsed ${formatDuration(s.elapsed)} eta ${formatDuration(s.eta)}`
  );
}

interface Sample {
  readonly time: number;
  readonly step: number;
  readonly tokens: number;
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly start: number;
  private samples: Sample[];
  private tokens = 0;
  private loss: number | undefined;
  private lastDraw = -Infinity;
  private drawn = false;
  private finished = false;

  constructor(readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stdout;
    this.now = options.now ?? (() => performance.now());
    this.start = this.now();
    this.samples = [{ time: this.start, step: options.start ?? 0, tokens: 0 }];
  }

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  /** Figures as of now. */
  stats(): ProgressStats {
    const now = this.now();
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last.time - first.time) / 1000;
    const stepsPerSecond = dt > 0 && last.step > first.step ? (last.step - first.step) / dt : undefined;
    const tokensPerSecond = dt > 0 && last.tokens > first.tokens ? (last.tokens - first.tokens) / dt : undefined;
    const left = Math.max(0, this.options.total - last.step);
    return {
      step: last.step,
      total: this.options.total,
      loss: this.loss,
      tokensPerSecond,
      stepsPerSecond,
      elapsed: (now - this.start) / 1000,
      eta: left === 0 ? 0 : stepsPerSecond ? left / stepsPerSecond : undefined,
    };
  }

  /** Records that `step` steps are done, `tokens` of them processed by this update. */
  update(step: number, info: { loss?: number; tokens?: number } = {}): void {
    const time = this.now();
    this.tokens += info.tokens ?? 0;
    if (info.loss !== undefined) this.loss = info.loss;
    this.samples.push({ time, step, tokens: this.tokens });
    const window = this.options.window ?? 20;
    if (this.samples.length > window + 1) this.samples = this.samples.slice(-(window + 1));
    const every = this.tty ? (this.options.redrawEvery ?? 100) : (this.options.plainEvery ?? 10_000);
    if (!this.drawn || step >= this.options.total || time - this.lastDraw >= every) this.draw(time);
  }

  /** A message on its own line (an evaluation result), with the bar redrawn below it on a TTY. */
  log(message: string): void {
    if (this.tty && this.drawn && !this.finished) {
      this.stream.write(`\r\x1b[K${message}\n`);
      this.draw(this.now());
    } else {
      this.stream.write(message + "\n");
    }
  }

  /** Draws the final state and ends the line. Further updates are ignored. */
  done(): void {
    if (this.finished) return;
    const last = this.samples[this.samples.length - 1]!;
    // on a TTY the bar must end with the final figures; a log already has them if the last update printed
    if (this.tty || this.lastDraw < last.time || !this.drawn) this.draw(this.now());
    if (this.tty) this.stream.write("\n");
    this.finished = true;
  }

  private draw(time: number): void {
    if (this.finished) return;
    const label = this.options.label ?? "";
    if (this.tty) this.stream.write(`\r${formatBarLine(this.stats(), this.stream.columns ?? 80, label)}\x1b[K`);
    else this.stream.write(formatPlainLine(this.stats(), label) + "\n");
    this.lastDraw = time;
    this.drawn = true;
  }
}
