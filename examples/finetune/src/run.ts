// The main job, start to end: compile the model's entries ahead of time, pretrain on the State
// of the Union addresses, fine-tune on Moby Dick with full fine-tuning, LoRA and DoRA at the same
// step budget (same batches, same rank for both adapters), evaluate, export, analyse, sample,
// and write the report. `main.ts` is its command line; the tests run it at a tiny size.
import { cpus } from "node:os";
import { loadCheckpoint, createDevice, type CompiledProgram, type Device } from "@dorafuse/runtime";
import { analyzeDecomposition, checkpointWeights, formatAnalysis, type FlatTensor as AnalysisTensor, type MethodAnalysis } from "./analysis.js";
import type { RunOptions } from "./config.js";
import { BatchSampler, bitsPerByte, evaluationBatches, loadMobyDick, loadSotu, splitCorpus, type Batch, type Split } from "./data.js";
import { generateBatch } from "./generate-batch.js";
import { adapterConfig, EVAL_ENTRY, METHODS, type EntryName, type Method, type RunConfig } from "./model.js";
import { writeOutputs, type MethodRun, type RunRecord } from "./outputs.js";
import { compileRun, loadRun, type Programs } from "./programs.js";
import type { ProgressStream } from "./progress.js";
import { createRunFolder, formatBytes, type RunPaths, type Sample } from "./report.js";
import { evaluateLoss, runPhase, spreadSteps, warmUp } from "./train.js";
import { loadMerged, PARAMS, readParams, startFrom, writeMerged } from "./weights.js";

export interface RunEnvironment {
  readonly device?: Device;
  /** Progress bars (default stdout). */
  readonly stream?: ProgressStream;
  /** Messages (default console.log). */
  readonly log?: (line: string) => void;
  /** The command line, for results.md. */
  readonly command?: string;
  /** The corpora's splits (tests pass smaller ones). */
  readonly data?: { readonly source: Split; readonly target: Split };
}

export interface RunSummary {
  readonly paths: RunPaths;
  readonly record: RunRecord;
  readonly programs: Programs;
}

const SAMPLE = { temperature: 0.8, topK: 40, seed: 1 } as const;

/** Parameters of a tree (`trainable`: adapter leaves only, or all for full fine-tuning), counted from the compiled step's state. */
function countParams(train: CompiledProgram, adapterOnly: boolean): { trainable: number; total: number } {
  let trainable = 0;
  let total = 0;
  for (const s of train.manifest.state) {
    if (s.role !== "param") continue;
    const n = s.shape.reduce((a, b) => a * b, 1);
    total += n;
    if (!adapterOnly || /\.(loraA|loraB|m)$/.test(s.key)) trainable += n;
  }
  return { trainable, total };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Checkpoint tensors under their layer names (`blocks.0.attn.q.w`), as the analysis reads them. */
async function checkpointLayers(path: string): Promise<Record<string, AnalysisTensor>> {
  const { tensors } = await loadCheckpoint(path);
  return Object.fromEntries(Object.entries(tensors).flatMap(([k, t]) => (k.startsWith(PARAMS) ? [[k.slice(PARAMS.length), t as AnalysisTensor]] : [])));
}

async function analyse(cfg: RunConfig, baseCheckpoint: string, methods: readonly { method: Method; checkpoints: readonly { step: number; path: string }[] }[]): Promise<MethodAnalysis[]> {
  const layers = Array.from({ length: cfg.layers }, (_, i) => [`blocks.${i}.attn.q`, `blocks.${i}.attn.v`]).flat();
  const base = checkpointWeights(await checkpointLayers(baseCheckpoint), layers, { scale: 1 });
  const scale = cfg.alpha / cfg.rank;
  const runs = [];
  for (const { method, checkpoints } of methods) {
    const saved = [];
    for (const c of checkpoints) saved.push({ step: c.step, weights: checkpointWeights(await checkpointLayers(c.path), layers, { scale, base }) });
    runs.push({ method, checkpoints: saved });
  }
  return analyzeDecomposition(base, runs);
}

function machineOf(device: Device): string {
  const a = device.adapter;
  const name = [a.description || a.device, a.backend].filter(Boolean).join(", ");
  return `${name} on ${cpus().length} CPU cores (${cpus()[0]?.model ?? "unknown CPU"}), Node.js ${process.version}`;
}

export async function runFinetune(cfg: RunConfig, o: RunOptions, env: RunEnvironment = {}): Promise<RunSummary> {
  const started = performance.now();
  const log = env.log ?? ((line: string) => console.log(line));
  const seconds: Record<string, number> = {};
  const lap = (name: string, since: number) => (seconds[name] = (performance.now() - since) / 1000);

  let t = performance.now();
  const data = env.data ?? { source: splitCorpus(loadSotu()), target: splitCorpus(loadMobyDick()) };
  const shape = { batch: cfg.batch, seq: cfg.seq };
  const validation = (s: Split): Batch[] => evaluationBatches(s.validation, { ...shape, maxBatches: o.evalBatches }).filter((b) => b.batch === cfg.batch);
  const val = { source: validation(data.source), target: validation(data.target) };
  lap("data", t);
  log(`data: State of the Union ${data.source.train.length.toLocaleString("en")} / ${data.source.validation.length.toLocaleString("en")} bytes, Moby Dick ${data.target.train.length.toLocaleString("en")} / ${data.target.validation.length.toLocaleString("en")} bytes (train / validation); validation passes use ${val.target.length * cfg.batch * cfg.seq} bytes`);

  const paths = await createRunFolder(o.out, o.run, ["base", ...METHODS]);
  const genDir = paths.gen;
  const device = env.device ?? (await createDevice());
  log(`run folder ${paths.root}; adapter ${device.adapter.description || device.adapter.device}`);

  t = performance.now();
  const compiled = await compileRun(cfg, genDir, { device, onEntry: (e) => log(`compiled ${e.entry.padEnd(8)} ${String(e.kernels).padStart(4)} kernels, ${formatBytes(e.peakBytes).padStart(9)} in ${e.seconds.toFixed(1)} s`) });
  lap("compile", t);
  t = performance.now();
  const programs = await loadRun(device, genDir);
  lap("load", t);
  seconds.pipelines = 0;
  const warm = async (...names: EntryName[]) => {
    log(`building the GPU pipelines of ${names.join(", ")} (lavapipe compiles each kernel on first use, then caches it on disk)…`);
    seconds.pipelines! += await warmUp(names.map((n) => [n, programs[n]] as const), genDir, val.target[0]!);
  };

  // ---- pretraining ----
  await warm("pretrain", "evalBase");
  t = performance.now();
  const basePaths = paths.method("base");
  const pretrain = await runPhase({
    label: "pretrain",
    train: programs.pretrain,
    evaluator: programs.evalBase,
    sampler: new BatchSampler(data.source.train, { ...shape, seed: cfg.seed }),
    steps: cfg.pretrainSteps,
    validation: val.source,
    evalEvery: o.evalEvery * 4,
    checkpointSteps: spreadSteps(cfg.pretrainSteps, 2),
    checkpointPath: basePaths.checkpoint,
    ...(env.stream ? { stream: env.stream } : {}),
  });
  const pretrained = await readParams(programs.pretrain);
  await writeMerged(basePaths.merged, pretrained, undefined);
  const base = { source: pretrain.validation.at(-1)![1], target: await evaluateLoss(programs.evalBase, val.target, programs.pretrain) };
  lap("pretrain", t);
  log(`pretrained: validation ${bitsPerByte(base.source).toFixed(3)} bits/byte on the State of the Union, ${bitsPerByte(base.target).toFixed(3)} on Moby Dick`);

  // ---- fine-tuning, one method at a time, on the same batches ----
  const methods: MethodRun[] = [];
  for (const method of METHODS) {
    await warm(method, EVAL_ENTRY[method]);
    t = performance.now();
    const train = programs[method];
    const evaluator = programs[EVAL_ENTRY[method]];
    const adapter = method === "full" ? undefined : adapterConfig(cfg, method);
    const mp = paths.method(method);
    await startFrom(train, pretrained, adapter, cfg.seed + 1);
    const phase = await runPhase({
      label: method,
      train,
      evaluator,
      sampler: new BatchSampler(data.target.train, { ...shape, seed: cfg.seed + 1 }),
      steps: cfg.finetuneSteps,
      validation: val.target,
      evalEvery: o.evalEvery,
      checkpointSteps: spreadSteps(cfg.finetuneSteps, o.checkpoints),
      checkpointPath: mp.checkpoint,
      initialValidation: base.target,
      ...(env.stream ? { stream: env.stream } : {}),
    });
    const sourceValidation = await evaluateLoss(evaluator, val.source, train);
    if (adapter) await train.exportAdapter(mp.adapter, { task_type: "CAUSAL_LM", base_model_name_or_path: "base/merged.safetensors" });
    await writeMerged(mp.merged, await readParams(train), adapter);
    const count = countParams(train, adapter !== undefined);
    methods.push({
      result: {
        method,
        trainableParams: count.trainable,
        totalParams: count.total,
        validationLoss: phase.validation.at(-1)![1],
        stepTimeMs: median(phase.stepMs),
        peakMemoryBytes: compiled.find((e) => e.entry === method)!.peakBytes,
      },
      phase,
      sourceValidation,
    });
    lap(method, t);
  }

  // ---- the paper's analysis, from the saved checkpoints ----
  t = performance.now();
  const analysis = await analyse(cfg, pretrain.checkpoints.at(-1)!.path, methods.map((m) => ({ method: m.result.method as Method, checkpoints: m.phase.checkpoints })));
  log(formatAnalysis(analysis));
  lap("analysis", t);

  // ---- samples from each model's merged weights, same prompts and seed ----
  await warm("forward");
  t = performance.now();
  const samples: Sample[] = [];
  for (const model of ["base", ...METHODS]) {
    await loadMerged(programs.forward, paths.method(model).merged);
    const texts = await generateBatch(programs.forward, o.prompts, { batch: cfg.sampleBatch, seq: cfg.seq }, { maxTokens: o.sampleTokens, ...SAMPLE });
    texts.forEach((g, i) => samples.push({ model, prompt: o.prompts[i]!, text: g.text, settings: `temperature ${SAMPLE.temperature}, top-k ${SAMPLE.topK}, seed ${SAMPLE.seed}` }));
  }
  lap("samples", t);
  seconds.total = (performance.now() - started) / 1000;

  const record: RunRecord = {
    run: o.run,
    machine: machineOf(device),
    command: env.command ?? "(called as a library)",
    settings: { layers: cfg.layers, dim: cfg.dim, heads: cfg.heads, seq: cfg.seq, batch: cfg.batch, pretrainSteps: cfg.pretrainSteps, finetuneSteps: cfg.finetuneSteps, rank: cfg.rank, alpha: cfg.alpha, dropout: cfg.dropout, lrPretrain: cfg.lr.pretrain, lrFull: cfg.lr.full, lrAdapter: cfg.lr.adapter, seed: cfg.seed },
    pretrain,
    base,
    methods,
    analysis,
    samples,
    seconds,
  };
  await writeOutputs(paths, record);
  return { paths, record, programs };
}
