// One error class per kind of mistake a caller of the fine-tuning example can make. Messages say
// what was expected, what was found, and where.

/** A corpus, a split or a batch request that cannot be served (sizes, fractions, seeds). */
export class DataError extends Error {
  override name = "DataError";
}

/** Weights that cannot be compared: mismatched shapes, missing layers, empty checkpoint lists. */
export class AnalysisError extends Error {
  override name = "AnalysisError";
}

/** Sampling options or logits that make no sense (negative temperature, wrong logit count). */
export class SamplingError extends Error {
  override name = "SamplingError";
}

/** A chart with nothing to draw, or a table or run folder given inconsistent input. */
export class ReportError extends Error {
  override name = "ReportError";
}
