// The compiler's error kind. Like every dorafuse error, the message says what was expected,
// what was found and where (the graph node, the kernel, the limit that was hit).

/** A graph cannot be compiled as asked: an unsupported op or dtype, a limit the plan cannot meet. */
export class CompileError extends Error {
  override name = "CompileError";
  constructor(message: string, readonly where?: string) {
    super(where ? `${message}\n    at ${where}` : message);
  }
}
