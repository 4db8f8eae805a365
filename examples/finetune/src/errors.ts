// One error class per kind of mistake a caller of the fine-tuning example can make. Messages say
// what was expected, what was found, and where.

/** A flag the command line cannot use (unknown, missing its value, out of range). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Weights that cannot be compared: mismatched shapes, missing layers, empty checkpoint lists. */
export class AnalysisError extends Error {
  override name = "AnalysisError";
}

/** A chart or table with nothing to show, or given inconsistent input. */
export class ReportError extends Error {
  override name = "ReportError";
}
