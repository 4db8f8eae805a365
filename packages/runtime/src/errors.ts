// The runtime's error kinds, one class each. Every message says what was expected, what
// was found and where (adapter, kernel and binding, buffer, file/key/byte offset).

/** The device cannot do what was asked: no adapter, a lost or disposed device, a limit, out of memory. */
export class DeviceError extends Error {
  override name = "DeviceError";
}

/** A buffer was misused: read after it was destroyed, larger than the device allows, wrong data for its dtype. */
export class BufferError extends DeviceError {
  override name = "BufferError";
}

/** A WGSL module failed to compile. `messages` carries Dawn's diagnostics with their lines. */
export class ShaderError extends Error {
  override name = "ShaderError";
  constructor(
    message: string,
    readonly messages: readonly ShaderMessage[] = [],
  ) {
    super(message);
  }
}

/** The name the rest of dorafuse (STYLE.md) uses for the same failure. */
export { ShaderError as CompileError };

export interface ShaderMessage {
  type: "error" | "warning" | "info";
  message: string;
  line: number;
  column: number;
}

/** An ExecutionPlan that cannot run here: it disagrees with its shaders, with itself or with the device's limits. */
export class PlanError extends Error {
  override name = "PlanError";
}

/** A safetensors file (or bytes) that is malformed, or tensors that cannot be written as one. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** The name STYLE.md and the training code use for checkpoint files, which are safetensors. */
export { SafetensorsError as CheckpointError };
