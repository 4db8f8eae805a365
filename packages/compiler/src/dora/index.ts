// DoRA in the compiler: the rewrite that finds DoRA layers (before differentiation, through
// core's primal-rewrite hook, and as a pass for graphs never differentiated), the fused WGSL
// kernels of the four DoRA primitives, the schedule's cost model, and the per-layer report.
// Importing @dorafuse/compiler registers all of it.
import { registerPrimalRewrite } from "@dorafuse/core";
import { registerKernel, type CustomBodyContext } from "../kernels/custom.js";
import { registerPass } from "../passes/registry.js";
import { colsKernel, rowsKernel } from "./backward.js";
import { mainKernel, singleKernel, statsKernel } from "./forward.js";
import { doraPass, recognizeDora } from "./rewrite.js";

registerKernel("doraLinear", { body: (ctx: CustomBodyContext) => (ctx.node.attrs.stats ? mainKernel(ctx) : singleKernel(ctx)) }, true);
registerKernel("doraStats", { body: statsKernel }, true);
registerKernel("doraGradRows", { body: rowsKernel }, true);
registerKernel("doraGradCols", { body: colsKernel }, true);
registerPrimalRewrite("dora", recognizeDora, true);
registerPass("dora", doraPass, true);

export { configureDora, withDoraConfig, recognizeDora, scheduleDora, doraPass, type DoraConfig } from "./rewrite.js";
export { chooseSchedule, estimate, type DoraSchedule, type ScheduleChoice, type DoraShape } from "./schedule.js";
export { doraReport, printDoraReport, DORA_FORWARD_OPS, DORA_BACKWARD_OPS, type DoraLayerReport } from "./report.js";
export { Recognizer, type DoraMatch } from "./recognize.js";
