// Reading config.json fields: each read names the file and the field when it is missing or
// of the wrong kind, and the families' defaults are transformers' own.
import { ModelError } from "../errors.js";

export class ConfigReader {
  constructor(
    readonly json: Record<string, unknown>,
    readonly file: string,
  ) {}

  /** A positive integer field, or `fallback` when absent. */
  int(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new ModelError(`${this.file}: "${key}" must be a positive integer, found ${JSON.stringify(this.json[key])}`);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelError(`${this.file}: "${key}" must be a number, found ${JSON.stringify(this.json[key])}`);
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== "boolean") throw new ModelError(`${this.file}: "${key}" must be true or false, found ${JSON.stringify(this.json[key])}`);
    return v;
  }

  /** One of `choices`, or `fallback` when absent. */
  oneOf<const K extends string>(key: string, choices: readonly K[], fallback: K): K {
    const v = this.json[key] ?? fallback;
    if (!choices.includes(v as K)) throw new ModelError(`${this.file}: "${key}" ${JSON.stringify(v)} is not supported (supported: ${choices.join(", ")})`);
    return v as K;
  }

  /** A token id or list of them (eos_token_id may be either); [] when absent or null. */
  ids(key: string): number[] {
    const v = this.json[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isInteger(x) && x >= 0)) throw new ModelError(`${this.file}: "${key}" must be a token id or a list of them, found ${JSON.stringify(v)}`);
    return list as number[];
  }

  /** Every dimension must divide as the model needs; says which did not. */
  divides(what: string, n: number, d: number): void {
    if (n % d !== 0) throw new ModelError(`${this.file}: ${what}: ${n} is not divisible by ${d}`);
  }
}
