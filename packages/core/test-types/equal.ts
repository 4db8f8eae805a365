// Exact type equality for the fixtures: `expectType<Equal<A, B>>(true)` fails unless A is B.
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export const expectType = <T extends true>(_ok: T): void => undefined;
