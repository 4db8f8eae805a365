export * from "./errors.js";
export type * from "./ir/dtype.js";
export * from "./ir/dtype.js";
export type * from "./ir/node.js";
