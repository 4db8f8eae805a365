// The pieces of the main job that need no GPU: the corpora, the flags, the paper's
// weight-decomposition analysis, the charts and the report.
export * from "./errors.js";
export * from "./data.js";
export * from "./flags.js";
export * from "./analysis.js";
export * from "./plot.js";
export * from "./report.js";
