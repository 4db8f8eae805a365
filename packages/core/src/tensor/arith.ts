// Type-level arithmetic on non-negative integer literals, for the shape rules that add,
// subtract or multiply dimensions (concat, slice, reshape's element count). Numbers are
// handled as reversed decimal digit lists with lookup tables per digit, so sizes like
// 256·128·50257 stay cheap for tsc; tuple-length tricks would hit the compiler's depth
// limits long before that. A wide `number` operand gives `number`: the rule is then left to
// trace time.

type DigitChar = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
type CharToDigit = { "0": 0; "1": 1; "2": 2; "3": 3; "4": 4; "5": 5; "6": 6; "7": 7; "8": 8; "9": 9 };
type Digit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
type Digits = Digit[];

// [digit, carry] of a + b, a · b and a − b (borrowing), for digits a (row) and b (column).
type AddT = [
  [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0]],
  [[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0], [0, 1]],
  [[2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0], [0, 1], [1, 1]],
  [[3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0], [0, 1], [1, 1], [2, 1]],
  [[4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0], [0, 1], [1, 1], [2, 1], [3, 1]],
  [[5, 0], [6, 0], [7, 0], [8, 0], [9, 0], [0, 1], [1, 1], [2, 1], [3, 1], [4, 1]],
  [[6, 0], [7, 0], [8, 0], [9, 0], [0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1]],
  [[7, 0], [8, 0], [9, 0], [0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1]],
  [[8, 0], [9, 0], [0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1]],
  [[9, 0], [0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [8, 1]],
];
type MulT = [
  [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]],
  [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 0], [8, 0], [9, 0]],
  [[0, 0], [2, 0], [4, 0], [6, 0], [8, 0], [0, 1], [2, 1], [4, 1], [6, 1], [8, 1]],
  [[0, 0], [3, 0], [6, 0], [9, 0], [2, 1], [5, 1], [8, 1], [1, 2], [4, 2], [7, 2]],
  [[0, 0], [4, 0], [8, 0], [2, 1], [6, 1], [0, 2], [4, 2], [8, 2], [2, 3], [6, 3]],
  [[0, 0], [5, 0], [0, 1], [5, 1], [0, 2], [5, 2], [0, 3], [5, 3], [0, 4], [5, 4]],
  [[0, 0], [6, 0], [2, 1], [8, 1], [4, 2], [0, 3], [6, 3], [2, 4], [8, 4], [4, 5]],
  [[0, 0], [7, 0], [4, 1], [1, 2], [8, 2], [5, 3], [2, 4], [9, 4], [6, 5], [3, 6]],
  [[0, 0], [8, 0], [6, 1], [4, 2], [2, 3], [0, 4], [8, 4], [6, 5], [4, 6], [2, 7]],
  [[0, 0], [9, 0], [8, 1], [7, 2], [6, 3], [5, 4], [4, 5], [3, 6], [2, 7], [1, 8]],
];
type SubT = [
  [[0, 0], [9, 1], [8, 1], [7, 1], [6, 1], [5, 1], [4, 1], [3, 1], [2, 1], [1, 1]],
  [[1, 0], [0, 0], [9, 1], [8, 1], [7, 1], [6, 1], [5, 1], [4, 1], [3, 1], [2, 1]],
  [[2, 0], [1, 0], [0, 0], [9, 1], [8, 1], [7, 1], [6, 1], [5, 1], [4, 1], [3, 1]],
  [[3, 0], [2, 0], [1, 0], [0, 0], [9, 1], [8, 1], [7, 1], [6, 1], [5, 1], [4, 1]],
  [[4, 0], [3, 0], [2, 0], [1, 0], [0, 0], [9, 1], [8, 1], [7, 1], [6, 1], [5, 1]],
  [[5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0], [9, 1], [8, 1], [7, 1], [6, 1]],
  [[6, 0], [5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0], [9, 1], [8, 1], [7, 1]],
  [[7, 0], [6, 0], [5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0], [9, 1], [8, 1]],
  [[8, 0], [7, 0], [6, 0], [5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0], [9, 1]],
  [[9, 0], [8, 0], [7, 0], [6, 0], [5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 0]],
];

/** 120 → [0, 2, 1]. */
type ToDigits<S extends string, Acc extends Digits = []> = S extends `${infer C extends DigitChar}${infer R}`
  ? ToDigits<R, [CharToDigit[C], ...Acc]>
  : Acc;

type DigitsToString<D extends Digits, Acc extends string = ""> = D extends [infer H extends Digit, ...infer R extends Digits]
  ? DigitsToString<R, `${H}${Acc}`>
  : Acc;

/** Drops high-order zeros ([0, 2, 0, 0] → [0, 2]); the empty list reads as 0. */
type Trim<D extends Digits> = D extends [...infer R extends Digits, 0] ? Trim<R> : D;

type FromDigits<D extends Digits> = Trim<D> extends []
  ? 0
  : DigitsToString<Trim<D>> extends `${infer N extends number}`
    ? N
    : never;

/** a + b + c for digits, c a carry of 0 or 1. */
type AddDigit<a extends Digit, b extends Digit, c extends 0 | 1> = c extends 0
  ? AddT[a][b]
  : AddT[AddT[a][b][0]][1] extends [infer d extends Digit, infer c2 extends 0 | 1]
    ? [d, AddT[a][b][1] extends 1 ? 1 : c2]
    : never;

type Head<D extends Digits> = D extends [infer H extends Digit, ...Digits] ? H : 0;
type Rest<D extends Digits> = D extends [Digit, ...infer R extends Digits] ? R : [];

type AddD<A extends Digits, B extends Digits, C extends 0 | 1 = 0, Acc extends Digits = []> = A extends []
  ? B extends []
    ? C extends 1
      ? [...Acc, 1]
      : Acc
    : AddD<[0], B, C, Acc>
  : AddDigit<Head<A>, Head<B>, C> extends [infer d extends Digit, infer c extends 0 | 1]
    ? AddD<Rest<A>, Rest<B>, c, [...Acc, d]>
    : never;

/** Digits of A · d for one digit d; C is the carry (at most 8). */
type MulDigit<A extends Digits, d extends Digit, C extends Digit = 0, Acc extends Digits = []> = A extends [
  infer a extends Digit,
  ...infer AR extends Digits,
]
  ? AddT[MulT[a][d][0]][C] extends [infer r extends Digit, infer c extends 0 | 1]
    ? MulDigit<AR, d, AddT[MulT[a][d][1]][c][0], [...Acc, r]>
    : never
  : C extends 0
    ? Acc
    : [...Acc, C];

type MulD<A extends Digits, B extends Digits, Shift extends 0[] = [], Acc extends Digits = []> = B extends [
  infer b extends Digit,
  ...infer BR extends Digits,
]
  ? MulD<A, BR, [...Shift, 0], AddD<Acc, [...Shift, ...MulDigit<A, b>]>>
  : Acc;

/** a − b − borrow for digits: [digit, borrow out]. */
type SubDigit<a extends Digit, b extends Digit, w extends 0 | 1> = w extends 0
  ? SubT[a][b]
  : SubT[SubT[a][b][0]][1] extends [infer d extends Digit, infer w2 extends 0 | 1]
    ? [d, SubT[a][b][1] extends 1 ? 1 : w2]
    : never;

/** A − B for A ≥ B; `never` when A < B. */
type SubD<A extends Digits, B extends Digits, W extends 0 | 1 = 0, Acc extends Digits = []> = A extends []
  ? Trim<B> extends []
    ? W extends 0
      ? Acc
      : never
    : never
  : SubDigit<Head<A>, Head<B>, W> extends [infer d extends Digit, infer w extends 0 | 1]
    ? SubD<Rest<A>, Rest<B>, w, [...Acc, d]>
    : never;

type IsLiteral<N extends number> = number extends N ? false : `${N}` extends `${bigint}` ? (`${N}` extends `-${string}` ? false : true) : false;

/** A + B, or `number` when either is not a non-negative integer literal. */
export type Plus<A extends number, B extends number> = IsLiteral<A> extends true
  ? IsLiteral<B> extends true
    ? FromDigits<AddD<ToDigits<`${A}`>, ToDigits<`${B}`>>>
    : number
  : number;

/** A − B; `never` when A < B; `number` when either is not a literal. */
export type Minus<A extends number, B extends number> = IsLiteral<A> extends true
  ? IsLiteral<B> extends true
    ? SubD<ToDigits<`${A}`>, ToDigits<`${B}`>> extends infer D extends Digits
      ? [D] extends [never]
        ? never
        : FromDigits<D>
      : never
    : number
  : number;

/** A · B, or `number` when either is not a literal. */
export type Times<A extends number, B extends number> = IsLiteral<A> extends true
  ? IsLiteral<B> extends true
    ? FromDigits<MulD<ToDigits<`${A}`>, ToDigits<`${B}`>>>
    : number
  : number;

/** Product of a list of literals; `number` if any is not a literal. */
export type Product<L extends readonly number[], Acc extends number = 1> = L extends readonly [
  infer H extends number,
  ...infer R extends readonly number[],
]
  ? Product<R, Times<Acc, H>>
  : Acc;

/** Sum of a list of literals; `number` if any is not a literal. */
export type Sum<L extends readonly number[], Acc extends number = 0> = L extends readonly [
  infer H extends number,
  ...infer R extends readonly number[],
]
  ? Sum<R, Plus<Acc, H>>
  : Acc;

/** Whether A < B for literals (false when either is wide). */
export type LessThan<A extends number, B extends number> = IsLiteral<A> extends true
  ? IsLiteral<B> extends true
    ? A extends B
      ? false
      : [Minus<B, A>] extends [never]
        ? false
        : true
    : false
  : false;

export type { IsLiteral };
