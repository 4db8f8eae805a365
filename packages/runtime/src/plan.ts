// The ExecutionPlan: what the compiler produces and the runtime executes. Plain,
// JSON-serializable data (no classes, no typed arrays: constants are base64), so a plan
// can be written to disk, diffed, shipped beside generated code and reported on.

/** Element types a plan's tensors can have (WebGPU-storable). */
export type PlanDType = "f32" | "f16" | "i32" | "u32" | "bool";

/** A GPU buffer the plan needs. Sizes are bytes, multiples of 4. */
export interface PlanBuffer {
  id: number;
  size: number;
  /**
   * input/output: bound to the caller's tensors; state: persists across runs (parameters,
   * optimizer state); constant: filled once from `data`; scratch: reusable between runs.
   */
  role: "input" | "output" | "state" | "constant" | "scratch";
  label?: string;
  /** base64 bytes for role "constant". */
  data?: string;
}

export interface PlanKernelBinding {
  binding: number;
  /** How the WGSL declares it: var<storage, read>, var<storage, read_write> or var<uniform>. */
  access: "read" | "read_write" | "uniform";
}

export interface PlanKernel {
  id: number;
  name: string;
  /** Complete WGSL module text; bind group 0 holds every binding. */
  wgsl: string;
  entryPoint: string;
  workgroupSize: [number, number, number];
  bindings: PlanKernelBinding[];
  /** Graph nodes this kernel computes (for reports and `explain`). */
  nodes?: string[];
  /** Estimates for reports: floating-point operations and bytes read + written per dispatch. */
  flops?: number;
  bytes?: number;
}

/** A range of a plan buffer. Offsets are multiples of the adapter's minStorageBufferOffsetAlignment. */
export interface BufferRange {
  buffer: number;
  offset: number;
  size: number;
}

export type PlanStep =
  | { kind: "dispatch"; kernel: number; bindings: ({ binding: number } & BufferRange)[]; workgroups: [number, number, number]; label?: string }
  | { kind: "copy"; src: BufferRange; dst: BufferRange; label?: string }
  /** Writes `data` (base64) into a buffer before the next step; used for per-run uniforms. */
  | { kind: "write"; dst: BufferRange; data: string; label?: string };

/** A named tensor of the plan's interface, living in a range of a buffer. */
export interface PlanTensor extends BufferRange {
  name: string;
  shape: number[];
  dtype: PlanDType;
}

export interface ExecutionPlan {
  format: "dorafuse.plan";
  version: 1;
  buffers: PlanBuffer[];
  kernels: PlanKernel[];
  steps: PlanStep[];
  inputs: PlanTensor[];
  outputs: PlanTensor[];
  /** State tensors that persist between runs and can be read/written by name. */
  state?: PlanTensor[];
  /** Adapter limits the plan was built against (checked when it is loaded). */
  requiredLimits?: Record<string, number>;
  requiredFeatures?: string[];
}
