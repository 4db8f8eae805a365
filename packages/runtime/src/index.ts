export type * from "./plan.js";
export { DeviceError, BufferError, ShaderError, CompileError, PlanError, SafetensorsError, CheckpointError, type ShaderMessage } from "./errors.js";
export { listAdapters, type AdapterOptions, type AdapterListing } from "./adapters.js";
export { createDevice, Device, OPTIONAL_FEATURES, type DeviceOptions, type AdapterInfo } from "./device.js";
export { type MemoryStats } from "./buffers.js";
export { BufferPool, bucketSize } from "./pool.js";
export { PipelineCache, hashWgsl, type PipelineCacheStats } from "./pipelines.js";
export { Tensor, upload, allocateTensor, type UploadOptions } from "./tensor.js";
export { PLAN_DTYPES, gpuByteSize, elementCount, f32ToF16, f16ToF32, bf16ToF32, f32ToBf16, type HostArray, type HostArrayOf } from "./dtypes.js";
export { reflectWgsl, type Reflection, type DeclaredBinding, type DeclaredEntryPoint } from "./reflect.js";
export { validatePlan } from "./validate.js";
export { Executable, loadPlan, run, type RunOptions, type RunResult, type TensorInput } from "./executable.js";
export { type Profile, type StepTiming } from "./profile.js";
export { fillTemplate } from "./kernels/template.js";
export { copyPlan } from "./kernels/copy.js";
export { matmulPlan, matmulWgsl, DEFAULT_MATMUL_TILE, type MatmulTile } from "./kernels/matmul.js";
export {
  readSafetensors,
  readSafetensorsHeader,
  streamSafetensors,
  writeSafetensors,
  parseSafetensors,
  serializeSafetensors,
  writeFileAtomically,
  gpuDType,
  SAFETENSORS_DTYPES,
  type HostTensor,
  type Safetensors,
  type SafetensorsArray,
  type SafetensorsArrayOf,
  type SafetensorsDType,
  type SafetensorsHeader,
  type HeaderEntry,
  type TensorsIn,
  type WriteOptions,
} from "./safetensors.js";
export { doctor, formatDoctorReport, type DoctorOptions, type DoctorReport, type Measurement } from "./doctor.js";
export { kernelPlan, type KernelPlanSpec, type KernelTensor } from "./kernels/kernel-plan.js";
export {
  saveCheckpoint,
  loadCheckpoint,
  checkTensors,
  stateSpec,
  captureState,
  restoreState,
  type Checkpoint,
  type CheckpointContents,
  type TensorSpec,
  type LoadCheckpointOptions,
  type RestoreOptions,
  fileDType,
} from "./checkpoint.js";
export { exportPeftAdapter, importPeftAdapter, exportMergedModel, PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE, type PeftExport, type PeftAdapter, type PeftLayer, type MergedModelOptions } from "./peft.js";
export { PEFT_CONFIG_DEFAULTS, type PeftLoraConfig } from "./peft-config.js";
export { PEFT_PREFIX, ADAPTER_NAMES, BASE_NAMES, toPeftKey, fromPeftKey, toMergedName, splitName, type PeftLayerKind, type AdapterLeaf, type ParsedPeftKey } from "./peft-names.js";
export * from "./compiled.js";
export * from "./manifest.js";
