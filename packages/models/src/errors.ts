// One error class for everything wrong with a model folder or a model's configuration: the
// message names the file, the tensor or the field, what was expected and what was found.

export class ModelError extends Error {
  override name = "ModelError";
}
