// The pieces of the fine-tuning example that do not need the compiler: data, the paper's
// weight-decomposition analysis, charts, the progress bar, the report and sampling.
export * from "./errors.js";
export * from "./random.js";
export * from "./data.js";
export * from "./analysis.js";
export * from "./plot.js";
export * from "./progress.js";
export * from "./report.js";
export * from "./sample.js";
