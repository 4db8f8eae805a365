// What a kernel template receives and returns. The plan emitter (plan/emit.ts) decides the
// bindings, builds the KernelIO over them and asks the template for the entry point's body;
// the template says how many workgroups of which size to launch.
import type { Node } from "@dorafuse/core";
import { loweringOf } from "../lowering.js";
import type { KernelGroup } from "../fusion/group.js";
import type { Target } from "../limits.js";
import type { WgslModule } from "../wgsl/module.js";
import type { KernelIO } from "./io.js";

export interface KernelContext {
  group: KernelGroup;
  target: Target;
  io: KernelIO;
  module: WgslModule;
  /** Is `n` read from memory by this kernel (a group input)? */
  isLoaded(n: Node): boolean;
}

export interface KernelBody {
  body: string[];
  workgroupSize: number;
  /** Total workgroups; the plan splits them over x, y and z within the adapter's limit. */
  workgroups: number;
  /** Estimated floating-point operations per dispatch. */
  flops: number;
  /** Short description for the header comment (the schedule and its parameters). */
  summary: string;
}

export type KernelTemplate = (ctx: KernelContext) => KernelBody;

/** Smallest power of two ≥ n. */
export const nextPow2 = (n: number): number => (n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n)));

/** Elementwise work in a kernel, for FLOP estimates: each computed node's arithmetic per element (lowering.ts). */
export function elementwiseFlops(nodes: readonly Node[], elements: number): number {
  return nodes.reduce((s, n) => s + loweringOf(n.op).flops, 0) * elements;
}
