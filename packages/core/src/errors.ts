// One error class per kind. Messages say what was expected, what was found, and where.

/** A shape rule failed: names the op, the shapes involved and the user's call site. */
export class ShapeError extends Error {
  override name = "ShapeError";
  constructor(message: string, readonly op?: string, readonly site?: string) {
    super(site ? `${message}\n    at ${site}` : message);
  }
}

/** An op got an element type it does not accept. */
export class DTypeError extends Error {
  override name = "DTypeError";
  constructor(message: string, readonly op?: string, readonly site?: string) {
    super(site ? `${message}\n    at ${site}` : message);
  }
}

/** A transform (trace, vjp, checkpoint) was used in a way it cannot handle. */
export class TraceError extends Error {
  override name = "TraceError";
}
