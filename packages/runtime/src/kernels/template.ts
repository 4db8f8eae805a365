// WGSL templates with named holes: `{{NAME}}` in the text, filled from a record. Every hole
// must be filled and every value must fill a hole, so a renamed hole cannot go unnoticed.

export type Holes = Record<string, string | number>;

export function fillTemplate(name: string, template: string, holes: Holes): string {
  const used = new Set<string>();
  const text = template.replace(/\{\{(\w+)\}\}/g, (_, hole: string) => {
    const value = holes[hole];
    if (value === undefined) throw new Error(`WGSL template "${name}" has a hole {{${hole}}} that was not given a value`);
    used.add(hole);
    return String(value);
  });
  const unused = Object.keys(holes).filter((h) => !used.has(h));
  if (unused.length) throw new Error(`WGSL template "${name}" has no hole named ${unused.map((h) => `{{${h}}}`).join(", ")}`);
  return text;
}

/** A u32 literal for WGSL. */
export const u32 = (n: number): string => `${n >>> 0}u`;
