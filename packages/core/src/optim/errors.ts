// The one error kind of the optimizers.

/** A misused optimizer: bad options, or gradients / state that do not match the parameters. */
export class OptimizerError extends Error {
  override name = "OptimizerError";
}
