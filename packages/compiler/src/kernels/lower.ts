// Which template computes a group: one per group kind; custom ops bring their own
// (kernels/custom.ts, registered by library authors).
import { CompileError } from "../errors.js";
import type { KernelGroup } from "../fusion/group.js";
import { contractionKernel } from "./contraction.js";
import { customKernel } from "./custom.js";
import type { KernelTemplate } from "./kernel.js";
import { mapKernel } from "./map.js";
import { matmulKernel } from "./matmul.js";
import { reduceKernel } from "./reduce.js";
import { scatterKernel } from "./scatter.js";

const TEMPLATES: Record<KernelGroup["kind"], KernelTemplate> = {
  map: mapKernel,
  reduce: reduceKernel,
  matmul: matmulKernel,
  contraction: contractionKernel,
  scatter: scatterKernel,
  custom: customKernel,
};

export function templateFor(g: KernelGroup): KernelTemplate {
  const t = TEMPLATES[g.kind];
  if (!t) throw new CompileError(`no kernel template for a ${g.kind} group`, "kernels/lower");
  return t;
}
