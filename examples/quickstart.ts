// The README's quick start: a small byte-level transformer trained with AdamW on the GPU.
//   node --conditions=dorafuse-src --import tsx examples/quickstart.ts
import { adamw, crossEntropy, evaluate, hostTensor, nn, randomKey, spec, valueAndGrad, type Tensor } from "@dorafuse/core";
import { compile } from "@dorafuse/compiler";

const cfg = { vocab: 256, dim: 64, heads: 4, hidden: 256, layers: 2, maxSeq: 32 } as const;
type Tokens = Tensor<["batch", "seq"], "i32">;

// a model is a plain function of a parameter tree; shapes are checked by tsc
const loss = (p: nn.LMParams<256, 64, 256, 32>, x: Tokens, y: Tokens) => crossEntropy(nn.transformerLM.apply(p, x, cfg), y);

// parameters and optimizer state: plain trees of host tensors
const params = evaluate((k) => nn.transformerLM.init(k, cfg), [randomKey(0)]);
const opt = adamw({ lr: 3e-3 });
const moments = evaluate((p) => opt.init(p), [params]);

// one training step, traced, differentiated and fused into WGSL kernels; the parameters and
// moments stay on the GPU and are updated in place
const step = (p: nn.LMParams<256, 64, 256, 32>, s: Parameters<typeof opt.update>[1], x: Tokens, y: Tokens) => {
  const [l, g] = valueAndGrad(loss)(p, x, y);
  const next = opt.update(g, s, p);
  return { loss: l, params: next.params, opt: next.state };
};
const batch = [spec([8, 32], "i32"), spec([8, 32], "i32")] as const;
const train = await compile(step as never, [params, moments, ...batch], { state: { params: 0, opt: 1 } });

const text = new TextEncoder().encode("dorafuse traces, differentiates and fuses plain functions into WGSL. ".repeat(20));
const window = (off: number) => hostTensor([8, 32], Array.from({ length: 256 }, (_, i) => text[off + i]!), "i32");
for (let i = 0; i < 20; i++) {
  const out = (await train(window(0), window(1))) as { loss: { read(): Promise<ArrayLike<number>> } };
  if (i % 5 === 4) console.log(`step ${i + 1}: loss ${(await out.loss.read())[0]!.toFixed(3)}`);
}
train.dispose();
train.device.dispose();
