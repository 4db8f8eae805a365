// The main job from start to end: every (method, rank, seed) fine-tuned by the models
// package's `finetune` on the same text and held-out tokens, then merged, analysed as the DoRA
// paper does, sampled and reported. It writes, under <out>/<run>/ (replaced on each run):
//
//   moby-dick.txt           the text fine-tuned on (when --data is not given)
//   results.md, results.json   the tables and every figure behind them
//   loss.svg                training loss (smoothed) and held-out loss per method and rank
//   analysis-q_proj.svg, analysis-v_proj.svg   the paper's ΔD–ΔM scatter per method
//   samples.md              the base model and each fine-tuned one continuing a few prompts
//   <method>-r<rank>-s<seed>/   finetune's out folder: the PEFT adapter (or, for full, the
//                           fine-tuned model), checkpoint, finetune.json, log.jsonl, and
//                           snapshots/step-N/ (the adapter at each save, for the analysis)
//   merged/<run>/           the adapter folded into the base (mergeAdapter), a plain HF folder
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cpus } from "node:os";
import { createDevice, importPeftAdapter, parseSafetensors, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, type Device } from "@dorafuse/runtime";
import { finetune, FINETUNE_FILES, Generator, loadHostModel, loadModel, mergeAdapter, Progress, type FinetuneResult } from "@dorafuse/models";
import { analyzeDecomposition, checkpointWeights, matrix, type Matrix, type MethodAnalysis, type WeightCheckpoint } from "./analysis.js";
import { loadMobyDick, writeCorpus } from "./data.js";
import { defaultRunName, runName, runSpecs, type JobOptions, type RunSpec } from "./flags.js";
import { decompositionScatterSvg, lineChartSvg, CATEGORICAL, type LineSeries } from "./plot.js";
import { bitsPerByte, correlationTable, groupLabel, groupRuns, runsTable, samplesMarkdown, summaryTable, type RunResult, type Sample } from "./report.js";

export const PROMPTS = ["Call me", "The whale", "It was a"];
export const SAMPLING = { temperature: 0.8, topK: 40, seed: 0 } as const;
/** The modules the analysis compares (the paper's query and value projections). */
export const ANALYSED = ["q_proj", "v_proj"] as const;

type HostTree = { [k: string]: HostTree } | HostTree[] | { shape: readonly number[]; data: Float64Array };

/** The [out, in] matrices of the base whose path ends in one of `modules`, by layer path ("model.layers.0.self_attn.q_proj"). */
export function moduleWeights(params: unknown, modules: readonly string[]): Record<string, Record<string, Matrix>> {
  const out: Record<string, Record<string, Matrix>> = Object.fromEntries(modules.map((m) => [m, {}]));
  const walk = (node: HostTree, path: string[]) => {
    if ("data" in node && "shape" in node && !Array.isArray(node)) return;
    for (const [k, v] of Object.entries(node)) {
      const child = v as HostTree & { w?: { shape: readonly number[]; data: Float64Array } };
      const name = modules.find((m) => m === k);
      if (name && child.w && child.w.shape.length === 2) out[name]![[...path, k].join(".")] = matrix(child.w.shape[0]!, child.w.shape[1]!, child.w.data);
      else if (typeof v === "object" && v !== null) walk(child, [...path, k]);
    }
  };
  walk(params as HostTree, []);
  return out;
}

/** What a run keeps at each save for the analysis: the adapter's files, or (full) the analysed weights from the checkpoint. */
function snapshot(spec: RunSpec, out: string, step: number, layers: readonly string[], full: WeightCheckpoint[]): void {
  if (spec.method === "full") {
    // the checkpoint holds the weights in f32 (the folder's model.safetensors is rounded to the base's f16)
    const tensors = parseSafetensors(readFileSync(join(out, FINETUNE_FILES.checkpoint))).tensors;
    const weights: Record<string, Matrix> = {};
    for (const layer of layers) {
      const t = tensors.get(`params.${layer}.w`);
      if (!t) throw new Error(`${out}/${FINETUNE_FILES.checkpoint}: no "params.${layer}.w"`);
      weights[layer] = matrix(t.shape[0]!, t.shape[1]!, t.data as Float32Array);
    }
    full.push({ step, weights });
    return;
  }
  const dir = join(out, "snapshots", `step-${step}`);
  mkdirSync(dir, { recursive: true });
  for (const f of [PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE]) copyFileSync(join(out, f), join(dir, f));
}

/** The merged (float64) weights of the analysed layers at each snapshot of an adapter run. */
async function adapterCheckpoints(out: string, steps: readonly number[], base: Record<string, Matrix>): Promise<WeightCheckpoint[]> {
  return Promise.all(
    steps.map(async (step) => {
      const adapter = await importPeftAdapter(join(out, "snapshots", `step-${step}`));
      const scale = adapter.layers[0]!.scale;
      return { step, weights: checkpointWeights(adapter.tensors as never, Object.keys(base), { scale, base }) };
    }),
  );
}

export interface JobRecord {
  readonly root: string;
  readonly machine: string;
  readonly options: JobOptions;
  readonly heldOut: { tokens: number; bytes: number };
  readonly warmup: number;
  readonly base: { loss: number; bits: number };
  readonly runs: RunResult[];
  readonly curves: Record<string, { losses: FinetuneResult["losses"]; validation: FinetuneResult["validation"] }>;
  readonly analysis: Record<string, MethodAnalysis[]>;
  readonly samples: Sample[];
  readonly seconds: number;
}

/** Fine-tunes, merges, analyses and samples every run the options ask for; writes the run folder. */
export async function runJob(o: JobOptions, log: (line: string) => void = console.log): Promise<JobRecord> {
  const started = performance.now();
  const root = join(o.out, o.run ?? defaultRunName(o));
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const data = o.data ?? join(root, "moby-dick.txt");
  if (!o.data) await writeCorpus(loadMobyDick(), data);
  const device = await createDevice();
  try {
    const host = await loadHostModel(o.model, { dtype: "f32" });
    const bases = moduleWeights(host.params, ANALYSED);
    const layers = Object.values(bases).flatMap((b) => Object.keys(b));
    const machine = `${device.adapter.description || device.adapter.device} (${cpus()[0]?.model.trim() ?? "CPU"}, ${cpus().length} cores), Node.js ${process.version}`;
    log(`${root}: ${runSpecs(o).length} runs of ${o.steps} steps × ${o.batch} × ${o.seq} tokens on ${machine}`);

    const runs: RunResult[] = [];
    const curves: JobRecord["curves"] = {};
    const checkpoints: Record<string, { spec: RunSpec; method: string; checkpoints: WeightCheckpoint[] }[]> = {};
    let base = { loss: NaN, bits: NaN };
    // finetune's own held-out windows: the same tokens for every run
    let heldOut = { tokens: 0, bytes: 0 };
    let total = 0;
    let warmup = 0;
    for (const spec of runSpecs(o)) {
      const name = runName(spec);
      const out = join(root, name);
      const every = Math.max(1, Math.round(o.steps / 4));
      const saves: number[] = [];
      const full: WeightCheckpoint[] = [];
      const progress = new Progress({ total: o.steps, label: name });
      const timed = { seconds: 0, tokens: 0 };
      const t0 = performance.now();
      const result = await finetune({
        model: o.model,
        data,
        out,
        device,
        method: spec.method,
        ...(spec.rank !== null ? { rank: spec.rank, alpha: 2 * spec.rank } : {}),
        seed: spec.seed,
        steps: o.steps,
        batch: o.batch,
        seq: o.seq,
        lr: spec.method === "full" ? o.lrFull : o.lr,
        valFraction: o.valFraction,
        evalBatches: o.evalBatches,
        evalEvery: every,
        saveEvery: every,
        report: (e) => {
          if (e.type === "step") {
            progress.update(e.step, { loss: e.loss, tokens: e.tokens });
            // throughput leaves out the first step, which builds the GPU pipelines
            if (e.step > 1) (timed.seconds += e.seconds), (timed.tokens += e.tokens);
          }
          else if (e.type === "eval") progress.log(`${name} step ${e.step}: held-out loss ${e.loss.toFixed(4)} nats/token`);
          else if (e.type === "save") {
            saves.push(e.step);
            snapshot(spec, out, e.step, layers, full);
          } else if (e.type === "start") {
            [heldOut, total, warmup] = [e.scored, e.total, e.settings.warmup];
            progress.log(`${name}: ${e.trainable.toLocaleString("en")} of ${e.total.toLocaleString("en")} parameters train; held out: ${e.scored.tokens} tokens (${e.scored.bytes} bytes)`);
          }
        },
      });
      progress.done();
      const seconds = (performance.now() - t0) / 1000;
      const merged = spec.method === "full" ? out : join(root, "merged", name);
      if (spec.method !== "full") await mergeAdapter(o.model, out, merged);
      const bits = (nats: number) => bitsPerByte(nats, heldOut.tokens, heldOut.bytes);
      const before = result.validation[0]!.loss;
      const after = result.validation[result.validation.length - 1]!.loss;
      base = { loss: before, bits: bits(before) };
      const label = groupLabel(spec);
      const correlation: Record<string, number> = {};
      for (const m of ANALYSED) {
        const baseM = bases[m]!;
        if (Object.keys(baseM).length === 0) continue;
        const cps = spec.method === "full" ? full.map((c) => ({ step: c.step, weights: Object.fromEntries(Object.keys(baseM).map((l) => [l, c.weights[l]!])) })) : await adapterCheckpoints(out, saves, baseM);
        const [analysis] = analyzeDecomposition(baseM, [{ method: label, checkpoints: cps }]);
        correlation[m] = analysis!.correlation;
        (checkpoints[m] ??= []).push({ spec, method: label, checkpoints: cps });
      }
      const run: RunResult = {
        name,
        method: spec.method,
        rank: spec.rank,
        seed: spec.seed,
        trainable: result.trainable,
        total,
        before,
        after,
        bitsBefore: bits(before),
        bitsAfter: bits(after),
        tokensPerSecond: timed.seconds > 0 ? timed.tokens / timed.seconds : result.tokens / result.seconds,
        seconds,
        correlation,
      };
      runs.push(run);
      curves[name] = { losses: result.losses, validation: result.validation };
      log(`${name}: held-out ${before.toFixed(4)} → ${after.toFixed(4)} nats/token (${run.bitsBefore.toFixed(3)} → ${run.bitsAfter.toFixed(3)} bits/byte), ${run.tokensPerSecond.toFixed(0)} tokens/s, r(ΔD, ΔM) ${Object.entries(correlation).map(([m, r]) => `${m} ${r.toFixed(2)}`).join(", ")}`);
    }

    // the paper's figure: the first seed of each (method, rank)
    const analysis: Record<string, MethodAnalysis[]> = {};
    for (const [m, list] of Object.entries(checkpoints)) {
      const firstSeed = list.filter((c) => c.spec.seed === o.seeds[0]);
      analysis[m] = analyzeDecomposition(bases[m]!, firstSeed.map((c) => ({ method: c.method, checkpoints: c.checkpoints })));
    }
    const samples = await sampleModels(o, root, runs, device, log);
    const record: JobRecord = { root, machine, options: o, heldOut, warmup, base, runs, curves, analysis, samples, seconds: (performance.now() - started) / 1000 };
    await writeOutputs(record);
    return record;
  } finally {
    device.dispose();
  }
}

/** The base and the first seed of each (method, rank), merged, continuing each prompt with the same sampling seed. */
async function sampleModels(o: JobOptions, root: string, runs: readonly RunResult[], device: Device, log: (line: string) => void): Promise<Sample[]> {
  if (o.sampleTokens === 0) return [];
  const models = [{ label: "base", dir: o.model }, ...groupRuns(runs).map((g) => ({ label: g.label, dir: g.runs[0]!.method === "full" ? join(root, g.runs[0]!.name) : join(root, "merged", g.runs[0]!.name) }))];
  const samples: Sample[] = [];
  for (const { label, dir } of models) {
    const model = await loadModel(dir, device);
    const ids = PROMPTS.map((p) => model.tokenizer!.encode(p));
    // rounded up to 64 as dorafuse generate does, so the two share compiled kernels
    const capacity = Math.min(model.config.maxPositions, Math.ceil((Math.max(...ids.map((i) => i.length)) + o.sampleTokens) / 64) * 64);
    const gen = await Generator.create(model, device, { capacity });
    for (const [i, prompt] of PROMPTS.entries()) {
      const r = await gen.generate(ids[i]!, { maxNewTokens: o.sampleTokens, ...SAMPLING });
      samples.push({ model: label, prompt, text: model.tokenizer!.decode(r.ids) });
    }
    gen.dispose();
    log(`sampled ${label}`);
  }
  return samples;
}

/** An exponential moving average of a noisy training curve (weight `beta` on the past), bias-corrected. */
export function smooth(points: readonly { step: number; loss: number }[], beta = 0.9): [number, number][] {
  let avg = 0;
  return points.map((p, i) => {
    avg = beta * avg + (1 - beta) * p.loss;
    return [p.step, avg / (1 - beta ** (i + 1))];
  });
}

/** The mean over runs of curves sampled at the same steps. */
function meanCurve(curves: readonly (readonly [number, number][])[]): [number, number][] {
  return curves[0]!.map(([step], i) => [step, curves.reduce((s, c) => s + c[i]![1], 0) / curves.length]);
}

/** results.md, results.json, loss.svg, analysis-<module>.svg and samples.md of a finished job. */
export async function writeOutputs(r: JobRecord): Promise<void> {
  const o = r.options;
  const groups = groupRuns(r.runs);
  const series: LineSeries[] = groups.flatMap((g, i) => {
    const color = CATEGORICAL[i % CATEGORICAL.length]!;
    const c = g.runs.map((run) => r.curves[run.name]!);
    return [
      { name: `${g.label} train`, color, points: meanCurve(c.map((x) => smooth(x.losses))) },
      { name: `${g.label} held out`, color, dashed: true, markers: true, points: meanCurve(c.map((x) => x.validation.map((v) => [v.step, v.loss] as [number, number]))) },
    ];
  });
  await writeFile(join(r.root, "loss.svg"), lineChartSvg({ title: `Fine-tuning ${o.model}: ${o.steps} steps of ${o.batch} × ${o.seq} tokens${o.seeds.length > 1 ? `, mean of ${o.seeds.length} seeds` : ""}`, yLabel: "loss (nats/token)", series, width: 900 }));
  for (const [m, a] of Object.entries(r.analysis)) {
    await writeFile(join(r.root, `analysis-${m}.svg`), decompositionScatterSvg(a, { title: `Magnitude and direction updates of ${m} (seed ${o.seeds[0]})` }));
  }
  const settings = `${o.steps} steps of ${o.batch} × ${o.seq} tokens, cosine schedule with ${r.warmup} warm-up steps, peak learning rate ${o.lr} (LoRA, DoRA; alpha = 2·rank on every attention and MLP projection) and ${o.lrFull} (full)`;
  const md = [
    `# Fine-tuning ${o.model} on ${o.data ?? "Moby Dick"}`,
    "",
    `Machine: ${r.machine}. ${r.runs.length} runs in ${(r.seconds / 60).toFixed(1)} minutes; ${settings}.`,
    "",
    `Held out: the last ${Math.round(o.valFraction * 100)}% of the text; every run is scored on the same first ${r.heldOut.tokens} held-out tokens (${r.heldOut.bytes} bytes). The base model: ${r.base.loss.toFixed(4)} nats/token, ${r.base.bits.toFixed(3)} bits/byte.`,
    "",
    summaryTable(r.runs),
    "",
    "## r(ΔD, ΔM)",
    "",
    "Pearson's r of the direction change ΔD and the magnitude change ΔM (the DoRA paper, §2.2) over the layers and the saved steps, of the merged weights against the base:",
    "",
    ...(r.runs.some((x) => Object.keys(x.correlation).length) ? [correlationTable(r.runs), ""] : ["(no q_proj / v_proj modules in this model)", ""]),
    "## Every run",
    "",
    runsTable(r.runs),
    "",
  ].join("\n");
  await writeFile(join(r.root, "results.md"), md);
  await writeFile(join(r.root, "results.json"), `${JSON.stringify({ machine: r.machine, options: o, heldOut: r.heldOut, base: r.base, seconds: r.seconds, runs: r.runs, analysis: r.analysis, curves: r.curves, samples: r.samples }, null, 1)}\n`);
  if (r.samples.length) await writeFile(join(r.root, "samples.md"), samplesMarkdown(r.samples, `Temperature ${SAMPLING.temperature}, top-k ${SAMPLING.topK}, seed ${SAMPLING.seed}, ${o.sampleTokens} new tokens; fine-tuned models are the merged folders of seed ${o.seeds[0]}.`));
}
