// WGSL text is written as templates with named holes, `{{name}}`, filled from a record.
// A hole on a line of its own takes a multi-line value indented to the hole's column, so
// generated blocks nest readably. A missing or unused hole is a bug and throws.
import { CompileError } from "../errors.js";

export type Holes = Record<string, string | readonly string[]>;

const HOLE = /\{\{(\w+)\}\}/g;

/** Compiles `text` once; the returned function fills it. */
export function template(name: string, text: string): (holes: Holes) => string {
  const wanted = new Set([...text.matchAll(HOLE)].map((m) => m[1]!));
  const lines = text.replace(/^\n/, "").split("\n");
  return (holes) => {
    for (const k of Object.keys(holes)) {
      if (!wanted.has(k)) throw new CompileError(`template ${name}: no hole named {{${k}}} (holes: ${[...wanted].join(", ")})`);
    }
    const out: string[] = [];
    for (const line of lines) {
      const alone = /^(\s*)\{\{(\w+)\}\}\s*$/.exec(line);
      if (alone) {
        const v = fill(name, holes, alone[2]!);
        const block = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split("\n"));
        for (const l of block) if (l !== "") out.push(alone[1] + l);
        continue;
      }
      out.push(
        line.replace(HOLE, (_, k: string) => {
          const v = fill(name, holes, k);
          return Array.isArray(v) ? v.join(" ") : String(v);
        }),
      );
    }
    return out.join("\n");
  };
}

function fill(name: string, holes: Holes, k: string): string | readonly string[] {
  const v = holes[k];
  if (v === undefined) throw new CompileError(`template ${name}: hole {{${k}}} was not filled`);
  return v;
}
