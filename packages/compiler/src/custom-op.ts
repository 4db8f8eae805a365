// The library author's entry point: one call registers an op everywhere it is needed — its
// primitive record with core (shape rule, float64 reference, VJP; the same interface as the
// built-in primitives) and its kernel template with the compiler — and returns a function
// that applies the op to traced tensors.
import { applyPrimitive, registerPrimitive, type Attrs, type Primitive, type Tensor } from "@dorafuse/core";
import { CompileError } from "./errors.js";
import { registerKernel, type CustomKernel } from "./kernels/custom.js";

export interface OpDefinition<A extends Attrs> {
  /** The primitive record; `kind` must be "custom". */
  primitive: Primitive<A>;
  /** The WGSL template the compiler schedules for it (with fused prologue and epilogue). */
  kernel: CustomKernel;
}

export type AppliedOp<A extends Attrs> = (inputs: readonly Tensor[], attrs?: A) => Tensor;

export function defineOp<A extends Attrs>(def: OpDefinition<A>): AppliedOp<A> {
  const name = def.primitive.name;
  if (def.primitive.kind !== "custom") {
    throw new CompileError(`defineOp: primitive "${name}" must have kind "custom", found "${def.primitive.kind}"`, "defineOp");
  }
  registerPrimitive(def.primitive);
  registerKernel(name, def.kernel);
  return (inputs, attrs) => applyPrimitive(name, inputs as never, attrs ?? ({} as A)) as Tensor;
}
