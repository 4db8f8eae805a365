// A WGSL module assembled from parts: a header comment saying which graph nodes the kernel
// computes, `enable` directives, storage bindings (all in group 0), helper functions (each
// once), workgroup variables and one compute entry point.
import { template } from "./template.js";
import { SPECIAL_VALUE_FUNCTIONS } from "./types.js";

export interface BindingDecl {
  name: string;
  /** Element type of the storage array. */
  element: string;
  access: "read" | "read_write";
  /** What it holds, for the reader. */
  comment: string;
}

const moduleText = template(
  "module",
  `
{{header}}
{{enables}}
{{bindings}}
{{functions}}
{{shared}}
@compute @workgroup_size({{size}})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  {{body}}
}
`,
);

export class WgslModule {
  private readonly enables = new Set<string>();
  private readonly functions = new Map<string, string>();
  private readonly shared: string[] = [];
  readonly bindings: BindingDecl[] = [];

  constructor(private readonly header: string[]) {}

  enable(ext: string): void {
    this.enables.add(ext);
  }

  /** Declares a storage binding; returns its binding number. */
  bind(decl: BindingDecl): number {
    this.bindings.push(decl);
    return this.bindings.length - 1;
  }

  /** Adds helper functions (by a name, so each is emitted once; the same code under two names once too). */
  fn(name: string, code: string): void {
    const text = code.trim();
    if (!this.functions.has(name) && ![...this.functions.values()].includes(text)) this.functions.set(name, text);
  }

  workgroupVar(decl: string): void {
    this.shared.push(decl);
  }

  print(workgroupSize: number, body: readonly string[]): string {
    const text = [...body, ...this.functions.values()].join("\n");
    for (const [name, code] of Object.entries(SPECIAL_VALUE_FUNCTIONS)) if (text.includes(`${name}(`)) this.fn(name, code);
    const bindings = this.bindings.map(
      (b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.element}>; // ${b.comment}`,
    );
    return moduleText({
      header: this.header.map((l) => `// ${l}`),
      enables: [...this.enables].map((e) => `enable ${e};`),
      bindings,
      functions: [...this.functions.values()].join("\n\n"),
      shared: this.shared.map((s) => `var<workgroup> ${s};`),
      size: String(workgroupSize),
      body,
    });
  }
}

/** The linear id of this workgroup across a grid split over x, y and z (see plan/dispatch.ts). */
export const WORKGROUP_INDEX = "wg.x + wg.y * nwg.x + wg.z * nwg.x * nwg.y";
