// Just enough WGSL reflection to check a plan against its shaders before Dawn does, so a
// mismatch is reported by kernel and binding name: the module-scope resource declarations
// (`@group(g) @binding(b) var<space, access> name: type;`) and the compute entry points.

export interface DeclaredBinding {
  group: number;
  binding: number;
  name: string;
  /** Address space as written: "storage" or "uniform" (others are not plan bindings). */
  space: string;
  /** "read", "read_write" or "uniform", comparable with PlanKernelBinding.access. */
  access: string;
  /** The declaration as written, for messages. */
  text: string;
}

export interface DeclaredEntryPoint {
  name: string;
  /** The workgroup size when every dimension is a literal or a module-scope integer const; else undefined. */
  workgroupSize?: [number, number, number];
}

export interface Reflection {
  bindings: DeclaredBinding[];
  entryPoints: DeclaredEntryPoint[];
}

/** Replaces comments with spaces, keeping offsets and line breaks where they were. */
function stripComments(wgsl: string): string {
  const withoutLineComments = wgsl.replace(/\/\/[^\n]*/g, (m) => " ".repeat(m.length));
  let out = "";
  // Block comments nest in WGSL.
  let depth = 0;
  for (let i = 0; i < withoutLineComments.length; i++) {
    if (withoutLineComments.startsWith("/*", i)) {
      depth++;
      out += "  ";
      i++;
    } else if (depth > 0 && withoutLineComments.startsWith("*/", i)) {
      depth--;
      out += "  ";
      i++;
    } else {
      out += depth > 0 && withoutLineComments[i] !== "\n" ? " " : withoutLineComments[i];
    }
  }
  return out;
}

function attributeValue(attributes: string, name: string): string | undefined {
  return new RegExp(`@${name}\\s*\\(([^)]*)\\)`).exec(attributes)?.[1]?.trim();
}

function integerConstants(source: string): Map<string, number> {
  const consts = new Map<string, number>();
  for (const m of source.matchAll(/\b(?:const|override)\s+(\w+)\s*(?::\s*\w+\s*)?=\s*(\d+)[ui]?\s*;/g)) consts.set(m[1]!, Number(m[2]));
  return consts;
}

function resolveInteger(expr: string, consts: Map<string, number>): number | undefined {
  const literal = /^(\d+)[ui]?$/.exec(expr.trim());
  if (literal) return Number(literal[1]);
  return consts.get(expr.trim());
}

export function reflectWgsl(wgsl: string): Reflection {
  const source = stripComments(wgsl);
  const bindings: DeclaredBinding[] = [];
  const declaration = /((?:@\w+\s*(?:\([^)]*\))?\s*)+)var\s*<\s*(\w+)\s*(?:,\s*(\w+)\s*)?>\s*(\w+)\s*:/g;
  for (const m of source.matchAll(declaration)) {
    const attributes = m[1]!;
    const group = attributeValue(attributes, "group");
    const binding = attributeValue(attributes, "binding");
    if (group === undefined || binding === undefined) continue;
    const space = m[2]!;
    const access = space === "uniform" ? "uniform" : (m[3] ?? "read");
    bindings.push({ group: Number(group), binding: Number(binding), name: m[4]!, space, access, text: m[0].replace(/\s+/g, " ").replace(/\s*:$/, "") });
  }
  const consts = integerConstants(source);
  const entryPoints: DeclaredEntryPoint[] = [];
  for (const m of source.matchAll(/((?:@\w+\s*(?:\([^)]*\))?\s*)+)fn\s+(\w+)/g)) {
    const attributes = m[1]!;
    if (!/@compute\b/.test(attributes)) continue;
    const entry: DeclaredEntryPoint = { name: m[2]! };
    const size = attributeValue(attributes, "workgroup_size");
    if (size !== undefined) {
      const dims = size.split(",").filter((d) => d.trim() !== "").map((d) => resolveInteger(d, consts));
      if (dims.every((d) => d !== undefined)) entry.workgroupSize = [dims[0]!, dims[1] ?? 1, dims[2] ?? 1];
    }
    entryPoints.push(entry);
  }
  return { bindings, entryPoints };
}
