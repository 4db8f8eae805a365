// Host-side random numbers for the example (batch positions, sampling), drawn from the same
// counter-based generator as the rest of dorafuse (threefry2x32, the `randomBits` reference), so
// a draw is a pure function of (key, counter): batch i of a run can be recomputed without
// replaying batches 0..i-1, which makes resuming from a checkpoint exact.
import { threefry2x32 } from "@dorafuse/core";
import { DataError } from "./errors.js";

/** A key as core's `randomKey(seed)` lays it out: [high word, low word] of the seed. */
export type HostKey = readonly [number, number];

/** The key of a seed (a non-negative safe integer), as `randomKey(seed).data`. */
export function hostKey(seed: number | HostKey): HostKey {
  if (typeof seed !== "number") return [seed[0] >>> 0, seed[1] >>> 0];
  if (!Number.isSafeInteger(seed) || seed < 0) throw new DataError(`seed: expected a non-negative safe integer, found ${seed}`);
  return [Math.floor(seed / 2 ** 32), seed >>> 0];
}

/** A stream of uniform numbers: call n uses threefry2x32(key, (stream, n)). */
export class RandomStream {
  private readonly key: HostKey;
  private counter = 0;

  /** `stream` picks an independent sequence under the same key (e.g. a batch index). */
  constructor(seed: number | HostKey, readonly stream = 0) {
    this.key = hostKey(seed);
  }

  /** Uniform in [0, 1) with 53 random bits (both words of one threefry block). */
  uniform(): number {
    const [hi, lo] = threefry2x32(this.key[0], this.key[1], this.stream >>> 0, this.counter++);
    return ((hi >>> 5) * 2 ** 26 + (lo >>> 6)) / 2 ** 53;
  }

  /** An integer in [0, n). The bias of scaling 53 bits is below 2^-20 for any n < 2^32. */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}
