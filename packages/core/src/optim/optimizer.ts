// What every optimizer shares: `init(params) → state` and `update(grads, state, params) →
// { params, state }` as pure functions of pytrees of tensors (so a training step traces them
// and the compiler fuses the update with the backward pass), a trainable mask (frozen leaves
// are returned as they are and get no state: null where a moment would be), optional
// clipping by global norm, and a learning rate read from the step counter. Each optimizer is
// a per-leaf rule over named state slots ("mu", "nu", "momentum").
import type { Tensor } from "../tensor/tensor.js";
import type { Dim } from "../tensor/shape-types.js";
import { isFloat } from "../ir/dtype.js";
import { fill } from "../tensor/emit.js";
import { scalar } from "../tensor/create.js";
import { flatten, maskLeaves, unflatten, type TreeDef } from "../trace/pytree.js";
import { isTensor } from "../trace/values.js";
import type { Mask } from "../grad/grad.js";
import { OptimizerError } from "./errors.js";
import { learningRate, type LearningRate } from "./schedules.js";
import { scaleByGlobalNorm } from "./clip.js";

/** Internal view of a tensor: shapes and dtypes are checked at trace time. */
export type Wide = Tensor<Dim[], "f32">;
type Slot = Wide | null;
const isSlot = (v: unknown): v is Slot => isTensor(v) || v === null;

/** Optimizer state: the update counter and one tree per slot, shaped like the parameters. */
export interface OptState {
  /** Updates made so far (i32 scalar); schedules and bias corrections read it. */
  readonly count: Tensor<[], "i32">;
  readonly [slot: string]: unknown;
}

export interface Optimizer {
  readonly name: string;
  /** Zeroed state for the trainable float leaves of `params` (null elsewhere). Call inside a trace. */
  init<P>(params: P): OptState;
  /**
   * One step: new parameters and state. `grads` is shaped like `params`; null leaves (what
   * valueAndGrad gives frozen parameters) and leaves outside the mask are left unchanged.
   */
  update<P>(grads: unknown, state: OptState, params: P): { params: P; state: OptState };
}

export interface CommonOptions {
  /** Learning rate: a number or a schedule of the step counter. */
  readonly lr: LearningRate;
  /**
   * Which parameters train, as valueAndGrad's `trainable`: a prefix tree of booleans, keys
   * left out frozen (adapterMask(params) for adapters). Default: every float leaf.
   */
  readonly mask?: Mask;
  /** Scale the gradients so their global norm (over the trainable leaves) is at most this. */
  readonly clipNorm?: number;
}

/** One parameter's step, as a rule sees it. */
export interface LeafStep {
  readonly param: Wide;
  readonly grad: Wide;
  /** This leaf's state, by slot name. */
  readonly slots: Readonly<Record<string, Wide>>;
  /** The learning rate at this step (scalar, the parameter's dtype). */
  readonly lr: Wide;
  /** This update's number, 1-based (f32 scalar): count + 1, for bias corrections. */
  readonly t: Tensor<[], "f32">;
  /** Dotted path of the leaf (`blocks.0.attn.q.loraA`). */
  readonly path: string;
}

export type Rule = (leaf: LeafStep) => { readonly param: Wide; readonly slots: Readonly<Record<string, Wide>> };

/** Dotted paths of a tree's leaves, as adapters name layers. */
export function leafNames(def: TreeDef): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string): void => {
    const join = (k: string | number): string => (path ? `${path}.${k}` : `${k}`);
    if (d.kind === "leaf") out.push(path);
    else if (d.kind === "array") d.items.forEach((x, i) => walk(x, join(i)));
    else if (d.kind === "object") d.keys.forEach((k, j) => walk(d.items[j]!, join(k)));
  };
  walk(def, "");
  return out;
}

/** The leaves an optimizer with `mask` trains: selected, present and float. */
export function trainableLeaves(def: TreeDef, leaves: readonly Slot[], mask: Mask | undefined): boolean[] {
  const sel = mask === undefined ? leaves.map(() => true) : maskLeaves(def, mask, "mask");
  return leaves.map((l, i) => sel[i]! && l !== null && isFloat(l.dtype));
}

/** A per-leaf predicate from a mask or a function of the dotted path (AdamW's decay mask). */
export function leafPredicate(def: TreeDef, which: Mask | ((path: string) => boolean) | undefined): boolean[] {
  const names = leafNames(def);
  if (which === undefined) return names.map(() => true);
  if (typeof which === "function") return names.map((n) => which(n));
  return maskLeaves(def, which, "decayMask");
}

function checkOptions(name: string, o: CommonOptions): void {
  if (typeof o.lr === "number" && !Number.isFinite(o.lr)) throw new OptimizerError(`${name}: lr must be a finite number or a schedule, found ${o.lr}`);
  if (typeof o.lr !== "number" && typeof o.lr !== "function") throw new OptimizerError(`${name}: lr must be a number or a schedule, found ${typeof o.lr}`);
  if (o.clipNorm !== undefined && !(o.clipNorm > 0)) throw new OptimizerError(`${name}: clipNorm must be positive, found ${o.clipNorm}`);
}

/** An optimizer from its state slots and per-leaf rule (made per tree, so it can hold per-leaf flags). */
export function makeOptimizer(name: string, opts: CommonOptions, slots: readonly string[], rule: (def: TreeDef) => Rule): Optimizer {
  checkOptions(name, opts);
  return {
    name,
    init<P>(params: P): OptState {
      const [leaves, def] = flatten(params, isSlot);
      const sel = trainableLeaves(def, leaves, opts.mask);
      const state: Record<string, unknown> = { count: scalar(0, "i32") };
      for (const s of slots) state[s] = unflatten(def, leaves.map((l, i) => (sel[i] ? fill(l!.shape, 0, l!.dtype) : null)));
      return state as unknown as OptState;
    },
    update<P>(grads: unknown, state: OptState, params: P): { params: P; state: OptState } {
      const [ps, def] = flatten(params, isSlot);
      const names = leafNames(def);
      const [gs] = flatten(grads, isSlot);
      if (gs.length !== ps.length) throw new OptimizerError(`${name}.update: grads have ${gs.length} leaves (tensors or nulls), params have ${ps.length}: pass the gradient tree of these params`);
      const sel = trainableLeaves(def, ps, opts.mask);
      const live = sel.map((s, i) => s && gs[i] !== null);
      live.forEach((on, i) => {
        const [p, g] = [ps[i]!, gs[i]!];
        if (on && (g.dtype !== p.dtype || g.shape.join() !== p.shape.join())) {
          throw new OptimizerError(`${name}.update: grad of ${names[i]} is ${g.dtype}[${g.shape.join(",")}], the parameter is ${p.dtype}[${p.shape.join(",")}]`);
        }
      });
      const slotLeaves = slots.map((s) => {
        const [ss] = flatten(state[s], isSlot);
        if (ss.length !== ps.length) throw new OptimizerError(`${name}.update: state.${s} has ${ss.length} leaves, params have ${ps.length}: was the state made by init on these params?`);
        live.forEach((on, i) => {
          if (on && ss[i] === null) throw new OptimizerError(`${name}.update: state.${s} has no entry for ${names[i]}: init with the same mask as update`);
        });
        return ss;
      });
      const g = opts.clipNorm === undefined ? gs : scaleByGlobalNorm(gs, live, opts.clipNorm);
      const count = state.count;
      const t = count.add(1).cast("f32");
      const lr = learningRate(opts.lr, count);
      const leafRule = rule(def);
      const newParams: Slot[] = [...ps];
      const newSlots = slotLeaves.map((ss) => [...ss]);
      live.forEach((on, i) => {
        if (!on) return;
        const p = ps[i]!;
        const cur = Object.fromEntries(slots.map((s, k) => [s, slotLeaves[k]![i]!]));
        const res = leafRule({ param: p, grad: g[i]!, slots: cur, lr: (p.dtype === "f32" ? lr : lr.cast(p.dtype)) as Wide, t, path: names[i]! });
        newParams[i] = res.param;
        slots.forEach((s, k) => (newSlots[k]![i] = res.slots[s]!));
      });
      const next: Record<string, unknown> = { ...state, count: count.add(1) };
      slots.forEach((s, k) => (next[s] = unflatten(def, newSlots[k]!)));
      return { params: unflatten<P>(def, newParams), state: next as unknown as OptState };
    },
  };
}
