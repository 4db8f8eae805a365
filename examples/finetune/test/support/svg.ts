// Parsing the SVG the charts write: a strict XML parse (any warning fails), and lookups of the
// elements a test counts by their class.
import { DOMParser, onWarningStopParsing, type Element } from "@xmldom/xmldom";

export type SvgElement = Element;

export interface ParsedSvg {
  readonly root: SvgElement;
  /** Every element whose class list contains `name`. */
  byClass(name: string): SvgElement[];
  byTag(name: string): SvgElement[];
}

export function parseSvg(text: string): ParsedSvg {
  const doc = new DOMParser({ onError: onWarningStopParsing }).parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (!root) throw new Error("the SVG has no root element");
  const all = () => Array.from(doc.getElementsByTagName("*"));
  return {
    root,
    byClass: (name) => all().filter((e) => (e.getAttribute("class") ?? "").split(/\s+/).includes(name)),
    byTag: (name) => Array.from(doc.getElementsByTagName(name)),
  };
}

/** The (x, y) of a marker drawn with `transform="translate(x y)"`. */
export function translation(e: SvgElement): [number, number] {
  const m = /translate\(([-\d.]+) ([-\d.]+)\)/.exec(e.getAttribute("transform") ?? "");
  if (!m) throw new Error(`no translate() in ${e.getAttribute("transform")}`);
  return [Number(m[1]), Number(m[2])];
}
