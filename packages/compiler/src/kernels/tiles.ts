// The matmul cost model (contraction groups extend it: fusion/contraction.ts): picks the tile shape for an (batch, M, N, K) product from a few
// candidates, by estimated work. Padding (tiles hanging over the edge) is wasted arithmetic;
// bigger register tiles (RM×RN outputs per invocation) reuse each value loaded from workgroup
// memory more; every tile reloads its operands; and too few workgroups leave the device idle —
// "too few" is the target's parallelism: a few for a CPU adapter (lavapipe runs a workgroup
// per core), dozens for a GPU.
import type { KernelLimits } from "../limits.js";

export interface Tile {
  /** Output rows and columns per workgroup, and the depth of one shared-memory step. */
  tm: number;
  tn: number;
  tk: number;
  /** Output rows and columns per invocation. */
  rm: number;
  rn: number;
}

export const TILES: readonly Tile[] = [
  { tm: 64, tn: 64, tk: 32, rm: 8, rn: 8 },
  { tm: 64, tn: 64, tk: 16, rm: 8, rn: 8 },
  { tm: 64, tn: 64, tk: 16, rm: 4, rn: 4 },
  { tm: 32, tn: 32, tk: 16, rm: 4, rn: 4 },
  { tm: 32, tn: 32, tk: 16, rm: 2, rn: 2 },
  { tm: 16, tn: 16, tk: 16, rm: 2, rn: 2 },
  { tm: 8, tn: 64, tk: 32, rm: 1, rn: 8 },
  { tm: 64, tn: 8, tk: 32, rm: 8, rn: 1 },
  { tm: 4, tn: 64, tk: 32, rm: 1, rn: 4 },
];

export const threadsOf = (t: Tile): number => (t.tm / t.rm) * (t.tn / t.rn);

/** Estimated cost of computing the product with tile `t` (arbitrary units, lower is better). */
export function tileCost(t: Tile, batch: number, m: number, n: number, k: number, parallelism: number): number {
  const mt = Math.ceil(m / t.tm);
  const nt = Math.ceil(n / t.tn);
  const kp = Math.ceil(k / t.tk) * t.tk;
  const groups = batch * mt * nt;
  const arithmetic = (groups * t.tm * t.tn * kp) / Math.sqrt(t.rm * t.rn);
  const traffic = groups * (t.tm + t.tn) * kp;
  const barriers = groups * (kp / t.tk) * 64;
  const idle = groups < parallelism ? parallelism / groups : 1;
  return (arithmetic + traffic + barriers) * idle;
}

/** What one more dispatch costs, in the units of tileCost: its launch and a round trip through memory. */
export const DISPATCH_COST = 2e6;

/**
 * The tiles a kernel with more in workgroup memory than a matmul's two operand tiles may use
 * (a contraction group): each of TILES, and each with half its depth.
 */
export function candidateTiles(limits: KernelLimits): Tile[] {
  const ok = (t: Tile) => threadsOf(t) <= limits.maxComputeInvocationsPerWorkgroup && threadsOf(t) <= limits.maxComputeWorkgroupSizeX;
  return TILES.flatMap((t) => [t, { ...t, tk: t.tk / 2 }]).filter(ok);
}

/** The cheapest tile that fits the adapter's workgroup limits. */
export function chooseTile(limits: KernelLimits, batch: number, m: number, n: number, k: number, parallelism: number, bytesPerElement = 4): Tile {
  const fits = TILES.filter(
    (t) =>
      threadsOf(t) <= limits.maxComputeInvocationsPerWorkgroup &&
      threadsOf(t) <= limits.maxComputeWorkgroupSizeX &&
      (t.tm * t.tk + t.tk * t.tn) * bytesPerElement <= limits.maxComputeWorkgroupStorageSize,
  );
  if (fits.length === 0) return { tm: 4, tn: 4, tk: 4, rm: 1, rn: 1 };
  let best = fits[0]!;
  let bestCost = Infinity;
  for (const t of fits) {
    const c = tileCost(t, batch, m, n, k, parallelism);
    if (c < bestCost) {
      best = t;
      bestCost = c;
    }
  }
  return best;
}
