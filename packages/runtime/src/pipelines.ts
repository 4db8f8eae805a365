// Shader modules and compute pipelines, each created once: modules are cached by the
// SHA-256 of their WGSL, pipelines by module, entry point and binding layout. A WGSL
// source that does not compile is a ShaderError quoting the offending lines.

import { createHash } from "node:crypto";
import type { Device } from "./device.js";
import { PlanError, ShaderError, type ShaderMessage } from "./errors.js";
import type { PlanKernelBinding } from "./plan.js";

export interface PipelineSource {
  /** Names the kernel in errors and labels. */
  name: string;
  wgsl: string;
  entryPoint: string;
  bindings: readonly PlanKernelBinding[];
}

export interface CompiledPipeline {
  pipeline: GPUComputePipeline;
  /** Layout of bind group 0, for creating bind groups. */
  layout: GPUBindGroupLayout;
}

export interface PipelineCacheStats {
  /** Shader modules compiled (one per distinct WGSL source). */
  modules: number;
  /** Pipelines created. */
  pipelines: number;
  /** Requests served from the cache. */
  hits: number;
}

export function hashWgsl(wgsl: string): string {
  return createHash("sha256").update(wgsl).digest("hex");
}

const bufferType: Record<PlanKernelBinding["access"], GPUBufferBindingType> = {
  read: "read-only-storage",
  read_write: "storage",
  uniform: "uniform",
};

export class PipelineCache {
  readonly #device: Device;
  readonly #modules = new Map<string, Promise<GPUShaderModule>>();
  readonly #pipelines = new Map<string, Promise<CompiledPipeline>>();
  readonly #stats: PipelineCacheStats = { modules: 0, pipelines: 0, hits: 0 };

  constructor(device: Device) {
    this.#device = device;
  }

  get stats(): Readonly<PipelineCacheStats> {
    return { ...this.#stats };
  }

  /** The compiled module for `wgsl`; compiles it on first use, throws ShaderError if it does not compile. */
  async module(wgsl: string, name: string): Promise<GPUShaderModule> {
    this.#device.check();
    const key = hashWgsl(wgsl);
    const cached = this.#modules.get(key);
    if (cached) {
      this.#stats.hits++;
      return cached;
    }
    const compiling = this.#compile(wgsl, name);
    this.#modules.set(key, compiling);
    compiling.catch(() => this.#modules.delete(key));
    return compiling;
  }

  async #compile(wgsl: string, name: string): Promise<GPUShaderModule> {
    this.#stats.modules++;
    const device = this.#device;
    let module!: GPUShaderModule;
    let scopeMessage = "";
    try {
      await device.scoped(
        () => (module = device.gpu.createShaderModule({ code: wgsl, label: name })),
        (_kind, message) => new ShaderError(message),
      );
    } catch (error) {
      if (!(error instanceof ShaderError)) throw error;
      scopeMessage = error.message;
    }
    const info = await device.whenAlive(module.getCompilationInfo());
    const messages: ShaderMessage[] = info.messages.map((m) => ({ type: m.type, message: m.message, line: m.lineNum, column: m.linePos }));
    const errors = messages.filter((m) => m.type === "error");
    if (errors.length === 0 && !scopeMessage) return module;
    throw new ShaderError(formatShaderErrors(name, wgsl, errors, scopeMessage), messages);
  }

  /** The pipeline for a kernel, with an explicit layout built from its declared bindings. */
  async pipeline(source: PipelineSource): Promise<CompiledPipeline> {
    this.#device.check();
    const layoutKey = source.bindings.map((b) => `${b.binding}:${b.access}`).join(",");
    const key = `${hashWgsl(source.wgsl)}|${source.entryPoint}|${layoutKey}`;
    const cached = this.#pipelines.get(key);
    if (cached) {
      this.#stats.hits++;
      return cached;
    }
    const creating = this.#create(source);
    this.#pipelines.set(key, creating);
    creating.catch(() => this.#pipelines.delete(key));
    return creating;
  }

  async #create(source: PipelineSource): Promise<CompiledPipeline> {
    const module = await this.module(source.wgsl, source.name);
    const gpu = this.#device.gpu;
    this.#stats.pipelines++;
    const wrap = (_kind: string, message: string) => new PlanError(`kernel "${source.name}": its binding layout or entry point "${source.entryPoint}" does not fit the shader:\n${message}`);
    const layout = await this.#device.scoped(
      () =>
        gpu.createBindGroupLayout({
          label: source.name,
          entries: source.bindings.map((b) => ({ binding: b.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: bufferType[b.access] } })),
        }),
      wrap,
    );
    try {
      const pipeline = await this.#device.whenAlive(
        gpu.createComputePipelineAsync({
          label: source.name,
          layout: gpu.createPipelineLayout({ label: source.name, bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: source.entryPoint },
        }),
      );
      return { pipeline, layout };
    } catch (error) {
      if (error instanceof Error && error.name === "GPUPipelineError") throw wrap("validation", error.message);
      throw error;
    }
  }

  /** Forgets every module and pipeline (the device is going away). */
  clear(): void {
    this.#modules.clear();
    this.#pipelines.clear();
  }
}

/** "line:col error: message" for each error, then the WGSL line with a caret under the column. */
function formatShaderErrors(name: string, wgsl: string, errors: readonly ShaderMessage[], scopeMessage: string): string {
  const lines = wgsl.split("\n");
  const parts = [`WGSL of kernel "${name}" does not compile (${errors.length || 1} error${errors.length > 1 ? "s" : ""}):`];
  for (const e of errors) {
    parts.push(`  ${e.line}:${e.column} error: ${e.message}`);
    const text = lines[e.line - 1];
    if (text !== undefined) {
      const gutter = String(e.line).padStart(5);
      parts.push(`${gutter} | ${text}`);
      parts.push(`${" ".repeat(gutter.length)} | ${" ".repeat(Math.max(0, e.column - 1))}^`);
    }
  }
  if (errors.length === 0) parts.push(scopeMessage);
  return parts.join("\n");
}
