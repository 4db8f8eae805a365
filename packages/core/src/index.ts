export * from "./errors.js";
export type * from "./ir/dtype.js";
export * from "./ir/dtype.js";
export type * from "./ir/node.js";
export * from "./engine.js";
export * from "./api.js";
export * from "./adapters/index.js";
export * from "./optim/index.js";
