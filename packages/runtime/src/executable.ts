// A loaded ExecutionPlan: its buffers allocated once, constants uploaded, pipelines and bind
// groups created once; each run writes the inputs, encodes every step into ONE command
// buffer, and hands back the outputs as GPU tensors. State tensors stay on the GPU between
// runs and can be read or written by name.

import { writeBytes } from "./buffers.js";
import type { Device, ErrorKind } from "./device.js";
import { align4, type HostArray } from "./dtypes.js";
import { DeviceError, PlanError } from "./errors.js";
import type { ExecutionPlan, PlanKernelBinding, PlanTensor } from "./plan.js";
import { Profiler, type Profile, type StepTiming } from "./profile.js";
import { allocateTensor, checkHostData, Tensor } from "./tensor.js";
import { validatePlan } from "./validate.js";

/** An input is host data (uploaded before the run) or a GPU tensor (copied on the GPU). */
export type TensorInput = HostArray | Tensor;

export interface RunOptions {
  /** Time every dispatch on the GPU (one compute pass per dispatch). Needs `timestamp-query`. */
  profile?: boolean;
}

export interface RunResult {
  /** One fresh GPU tensor per plan output; dispose() them or let them be collected. */
  outputs: Record<string, Tensor>;
  /** Per-dispatch GPU times when the run was profiled. */
  profile?: Profile;
  /** Reads every output back to the host, then releases their GPU buffers. */
  readAll(): Promise<Record<string, HostArray>>;
}

type Encoded =
  | { kind: "dispatch"; index: number; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; timing: Omit<StepTiming, "ns"> }
  | { kind: "copy"; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

const wrapRunError = (what: string) => (kind: ErrorKind, message: string) =>
  kind === "validation" ? new PlanError(`${what} failed WebGPU validation:\n${message}`) : new DeviceError(`${what} failed (${kind} error):\n${message}`);

function usageOf(plan: ExecutionPlan): Map<number, GPUBufferUsageFlags> {
  const access = new Map<number, PlanKernelBinding["access"]>();
  const usage = new Map<number, GPUBufferUsageFlags>(plan.buffers.map((b) => [b.id, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST]));
  for (const step of plan.steps) {
    if (step.kind !== "dispatch") continue;
    const kernel = plan.kernels.find((k) => k.id === step.kernel)!;
    for (const b of kernel.bindings) access.set(b.binding, b.access);
    for (const b of step.bindings) {
      const flag = access.get(b.binding) === "uniform" ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE;
      usage.set(b.buffer, usage.get(b.buffer)! | flag);
    }
    access.clear();
  }
  return usage;
}

export class Executable {
  readonly device: Device;
  readonly plan: ExecutionPlan;
  readonly #buffers: Map<number, GPUBuffer>;
  readonly #steps: Encoded[];
  readonly #staging: GPUBuffer[];
  #disposed = false;

  private constructor(device: Device, plan: ExecutionPlan, buffers: Map<number, GPUBuffer>, steps: Encoded[], staging: GPUBuffer[]) {
    this.device = device;
    this.plan = plan;
    this.#buffers = buffers;
    this.#steps = steps;
    this.#staging = staging;
  }

  /** Validates the plan against the device and its shaders, compiles its kernels and allocates its buffers. */
  static async load(device: Device, plan: ExecutionPlan): Promise<Executable> {
    device.check();
    validatePlan(plan, device);
    const pipelines = new Map(await Promise.all(plan.kernels.map(async (k) => [k.id, await device.pipelines.pipeline(k)] as const)));
    const buffers = new Map<number, GPUBuffer>();
    const staging: GPUBuffer[] = [];
    try {
      const steps = await device.scoped(() => {
        const usage = usageOf(plan);
        for (const b of plan.buffers) {
          const buffer = device.buffers.create(b.size, usage.get(b.id)!, b.label ?? `plan buffer ${b.id} (${b.role})`);
          buffers.set(b.id, buffer);
          // Constants, and state with an initial value; everything else starts as zeros.
          if (b.data !== undefined) writeBytes(device, buffer, 0, Buffer.from(b.data, "base64"));
        }
        return plan.steps.map((step, index): Encoded => {
          if (step.kind === "dispatch") {
            const kernel = plan.kernels.find((k) => k.id === step.kernel)!;
            const { pipeline, layout } = pipelines.get(kernel.id)!;
            const bindGroup = device.gpu.createBindGroup({
              label: `step ${index} (${kernel.name})`,
              layout,
              entries: step.bindings.map((b) => ({ binding: b.binding, resource: { buffer: buffers.get(b.buffer)!, offset: b.offset, size: b.size } })),
            });
            const timing = { step: index, kernel: kernel.name, ...(step.label ? { label: step.label } : {}) };
            return { kind: "dispatch", index, pipeline, bindGroup, workgroups: step.workgroups, timing };
          }
          if (step.kind === "copy") {
            const { src, dst } = step;
            return { kind: "copy", src: buffers.get(src.buffer)!, srcOffset: src.offset, dst: buffers.get(dst.buffer)!, dstOffset: dst.offset, size: src.size };
          }
          // A write must land between the steps around it, so it is a copy from a buffer filled at load time.
          const source = device.buffers.create(step.dst.size, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, `step ${index} write data`);
          staging.push(source);
          writeBytes(device, source, 0, Buffer.from(step.data, "base64"));
          return { kind: "copy", src: source, srcOffset: 0, dst: buffers.get(step.dst.buffer)!, dstOffset: step.dst.offset, size: step.dst.size };
        });
      }, wrapRunError("loading the plan"));
      return new Executable(device, plan, buffers, steps, staging);
    } catch (error) {
      if (!device.lost) for (const buffer of [...buffers.values(), ...staging]) device.buffers.destroy(buffer);
      throw error;
    }
  }

  #check(): void {
    if (this.#disposed) throw new PlanError("this executable was disposed");
    this.device.check();
  }

  /** Runs the whole plan as one command buffer and returns its outputs as GPU tensors. */
  async run(inputs: Record<string, TensorInput>, options: RunOptions = {}): Promise<RunResult> {
    this.#check();
    const copies = this.#stageInputs(inputs);
    const dispatches = this.#steps.filter((s) => s.kind === "dispatch");
    const profiler = options.profile ? new Profiler(this.device, dispatches.length) : undefined;
    const outputs: Record<string, Tensor> = {};
    try {
      for (const o of this.plan.outputs) outputs[o.name] = allocateTensor(this.device, o.shape, o.dtype, o.name);
      await this.device.scoped(() => {
        const encoder = this.device.gpu.createCommandEncoder({ label: "dorafuse run" });
        for (const c of copies) encoder.copyBufferToBuffer(c.from.buffer, c.from.offset, this.#buffers.get(c.to.buffer)!, c.to.offset, align4(c.to.size));
        this.#encodeSteps(encoder, profiler);
        for (const o of this.plan.outputs) encoder.copyBufferToBuffer(this.#buffers.get(o.buffer)!, o.offset, outputs[o.name]!.buffer, 0, align4(o.size));
        profiler?.resolve(encoder);
        this.device.gpu.queue.submit([encoder.finish()]);
      }, wrapRunError("running the plan"));
      const profile = profiler ? await profiler.read(dispatches.map((d) => (d as Extract<Encoded, { kind: "dispatch" }>).timing)) : undefined;
      return {
        outputs,
        ...(profile ? { profile } : {}),
        readAll: () => readAll(outputs),
      };
    } catch (error) {
      for (const t of Object.values(outputs)) t.dispose();
      throw error;
    } finally {
      profiler?.dispose();
    }
  }

  /** Checks the inputs against the plan, queues the host ones, and lists the GPU ones to copy. */
  #stageInputs(inputs: Record<string, TensorInput>): { from: Tensor; to: PlanTensor }[] {
    const declared = new Map(this.plan.inputs.map((t) => [t.name, t]));
    for (const name of Object.keys(inputs)) {
      if (!declared.has(name)) throw new PlanError(`run() got input "${name}", which the plan does not have; its inputs are [${[...declared.keys()].join(", ")}]`);
    }
    const copies: { from: Tensor; to: PlanTensor }[] = [];
    for (const t of this.plan.inputs) {
      const value = inputs[t.name];
      const spec = `${t.dtype}[${t.shape.join(",")}]`;
      if (value === undefined) throw new PlanError(`run() is missing input "${t.name}" (${spec})`);
      if (value instanceof Tensor) {
        if (value.device !== this.device) throw new PlanError(`input "${t.name}" is a tensor of another device`);
        if (value.disposed) throw new PlanError(`input "${t.name}" is a disposed tensor`);
        if (value.dtype !== t.dtype || value.shape.join() !== t.shape.join()) throw new PlanError(`input "${t.name}" must be ${spec}, found a tensor ${value.describe()}`);
        copies.push({ from: value, to: t });
      } else {
        checkHostData(t.name, t.dtype, t.shape, value);
      }
    }
    for (const t of this.plan.inputs) {
      const value = inputs[t.name]!;
      if (!(value instanceof Tensor)) this.#writeHost(t, value);
    }
    return copies;
  }

  #writeHost(t: PlanTensor, data: HostArray): void {
    // bool arrives as bytes but lives as u32 words; the Tensor class knows the conversion.
    new Tensor(this.device, this.#buffers.get(t.buffer)!, t.offset, t.shape, t.dtype, t.name, false).write(data);
  }

  #encodeSteps(encoder: GPUCommandEncoder, profiler: Profiler | undefined): void {
    let pass: GPUComputePassEncoder | undefined;
    let dispatchIndex = 0;
    for (const step of this.#steps) {
      if (step.kind === "copy") {
        pass?.end();
        pass = undefined;
        encoder.copyBufferToBuffer(step.src, step.srcOffset, step.dst, step.dstOffset, align4(step.size));
        continue;
      }
      if (profiler) {
        pass?.end();
        pass = encoder.beginComputePass({ label: step.timing.kernel, timestampWrites: profiler.timestampWrites(dispatchIndex) });
      } else {
        pass ??= encoder.beginComputePass({ label: "dorafuse steps" });
      }
      dispatchIndex++;
      pass.setPipeline(step.pipeline);
      pass.setBindGroup(0, step.bindGroup);
      pass.dispatchWorkgroups(...step.workgroups);
    }
    pass?.end();
  }

  #stateTensor(name: string): PlanTensor {
    const t = this.plan.state?.find((s) => s.name === name);
    if (!t) throw new PlanError(`the plan has no state tensor "${name}"; its state is [${(this.plan.state ?? []).map((s) => s.name).join(", ")}]`);
    return t;
  }

  /** A view of a state tensor in the plan's own buffer (valid until the next run changes it). */
  state(name: string): Tensor {
    this.#check();
    const t = this.#stateTensor(name);
    return new Tensor(this.device, this.#buffers.get(t.buffer)!, t.offset, t.shape, t.dtype, t.name, false);
  }

  readState(name: string): Promise<HostArray> {
    return this.state(name).read();
  }

  /** Replaces a state tensor's value with host data or (copied on the GPU) a tensor. */
  async writeState(name: string, value: TensorInput): Promise<void> {
    const target = this.state(name);
    if (!(value instanceof Tensor)) return target.write(value);
    if (value.device !== this.device) throw new PlanError(`state "${name}": the tensor written to it belongs to another device`);
    if (value.disposed) throw new PlanError(`state "${name}": the tensor written to it was disposed`);
    if (value.dtype !== target.dtype || value.shape.join() !== target.shape.join()) {
      throw new PlanError(`state "${name}" is ${target.describe()}, the tensor written to it is ${value.describe()}`);
    }
    await this.device.scoped(() => {
      const encoder = this.device.gpu.createCommandEncoder({ label: `write state ${name}` });
      encoder.copyBufferToBuffer(value.buffer, value.offset, target.buffer, target.offset, align4(target.byteLength));
      this.device.gpu.queue.submit([encoder.finish()]);
    }, wrapRunError(`writing state "${name}"`));
  }

  /** GPU memory this executable holds, in buffers and bytes. */
  get footprint(): { buffers: number; bytes: number } {
    const all = [...this.#buffers.values(), ...this.#staging];
    return { buffers: all.length, bytes: all.reduce((a, b) => a + b.size, 0) };
  }

  /** Destroys the plan's buffers. Outputs already returned stay valid. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.device.lost) return;
    for (const buffer of [...this.#buffers.values(), ...this.#staging]) this.device.buffers.destroy(buffer);
  }
}

async function readAll(outputs: Record<string, Tensor>): Promise<Record<string, HostArray>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([name, t]) => [name, await t.read()] as const));
  for (const t of Object.values(outputs)) t.dispose();
  return Object.fromEntries(entries);
}

/** Loads a plan for repeated runs. */
export function loadPlan(device: Device, plan: ExecutionPlan): Promise<Executable> {
  return Executable.load(device, plan);
}

const loaded = new WeakMap<Device, WeakMap<ExecutionPlan, Promise<Executable>>>();

/** Runs a plan once and reads every output back; the loaded plan is cached per device and plan object. */
export async function run(device: Device, plan: ExecutionPlan, inputs: Record<string, TensorInput>, options: RunOptions = {}): Promise<Record<string, HostArray>> {
  let plans = loaded.get(device);
  if (!plans) loaded.set(device, (plans = new WeakMap()));
  let executable = plans.get(plan);
  if (!executable) {
    executable = loadPlan(device, plan);
    plans.set(plan, executable);
    executable.catch(() => plans.delete(plan));
  }
  const result = await (await executable).run(inputs, options);
  return result.readAll();
}
