// The `nn` namespace: layers as init/apply pairs over plain parameter trees.
export * from "./layers.js";
export * from "./transformer.js";
