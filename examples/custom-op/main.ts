// Runs the custom op on the GPU inside a fused kernel and prints what the compiler made of it:
//   node --conditions=dorafuse-src --import tsx examples/custom-op/main.ts
import { hostTensor, spec, type Tensor } from "@dorafuse/core";
import { compile, explain } from "@dorafuse/compiler";
import { cumsum } from "./cumsum.js";

type F = Tensor<number[], "f32">;
// exp(x) is fused into the op's reader, ×2 into its epilogue: one kernel
const f = (x: Tensor) => cumsum((x as F).exp()).mul(2);

console.log(explain(f, [spec([2, 6])]));
const c = await compile(f, [spec([2, 6])]);
const x = hostTensor([2, 6], [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6].map((v) => Math.log(v || 1)));
console.log("2·cumsum(exp(x)):", ((await c.run(x)) as { toArray(): number[] }).toArray());
c.dispose();
c.device.dispose();
