// The primitives a graph may use: the built-in table (prims/index.ts) and the ones library
// authors add with `registerPrimitive` (custom ops), looked up by name by the builder, the
// interpreter and autodiff.
import type { Attrs } from "./node.js";
import type { Primitive } from "./primitive.js";
import { BUILTINS } from "../prims/index.js";

const builtins = new Map<string, Primitive<any>>(Object.entries(BUILTINS));
for (const [key, p] of builtins) if (key !== p.name) throw new Error(`prims/index.ts: the entry "${key}" holds primitive "${p.name}"`);
const registered = new Map<string, Primitive<any>>();

/** Adds a custom primitive. A built-in name is refused; re-registering a name throws unless `replace` is set (tests, hot reload). */
export function registerPrimitive<A extends Attrs>(p: Primitive<A>, replace = false): Primitive<A> {
  if (builtins.has(p.name)) throw new Error(`registerPrimitive: "${p.name}" is a built-in primitive`);
  if (registered.has(p.name) && !replace) throw new Error(`registerPrimitive: "${p.name}" is already registered`);
  registered.set(p.name, p);
  return p;
}

/** The record for `name`, or undefined. */
export function findPrimitive(name: string): Primitive<any> | undefined {
  return builtins.get(name) ?? registered.get(name);
}

/** The record for `name`; throws naming the known ops if there is none. */
export function getPrimitive(name: string): Primitive<any> {
  const p = findPrimitive(name);
  if (!p) throw new Error(`unknown primitive "${name}" (known: ${[...builtins.keys(), ...registered.keys()].sort().join(", ")})`);
  return p;
}

/** All primitives: the built-ins in table order, then the registered ones. */
export function listPrimitives(): Primitive<any>[] {
  return [...builtins.values(), ...registered.values()];
}
