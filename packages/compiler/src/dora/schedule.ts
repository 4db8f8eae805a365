// Which forward schedule a DoRA layer gets, by a cost model over its batch, sizes and rank.
//
//   single — ONE kernel. Each workgroup owns a tile of y (TM batch rows × TN output rows) and,
//            from the same x, W and A tiles it loads for x·Wᵀ, accumulates x'·Aᵀ, W·Aᵀ, A·Aᵀ
//            and ‖W‖² for its rows, composes the norm and the output in its epilogue. The small
//            products are recomputed by every workgroup that needs them: W·Aᵀ once per batch
//            tile, x'·Aᵀ once per output tile, A·Aᵀ everywhere — extra work (TM + TN + r)·r·in
//            per workgroup, against TM·TN·in of useful work.
//   split  — TWO kernels. doraStats computes n² (one workgroup per TN output rows) and x'·Aᵀ
//            (one per TM batch rows) once each; the main kernel is a tiled x·Wᵀ whose epilogue
//            adds s·(x'·Aᵀ)·Bᵀ and composes. Extra work: one more dispatch and A·Aᵀ per norm
//            workgroup.
//
// The model counts FLOPs, charges each dispatch a fixed cost, and penalizes a schedule whose
// main kernel has fewer workgroups than a device keeps busy. It runs at graph level (a
// compiler pass sees no adapter), so its constants describe a mid-range GPU; on a CPU adapter
// dispatches cost more and the single kernel wins a little longer. `explain` prints both
// estimates on every doraLinear node (`why`).
export type DoraSchedule = "single" | "split";

export interface DoraShape {
  n: number;
  inDim: number;
  out: number;
  rank: number;
  dropout: boolean;
}

export interface ScheduleChoice {
  schedule: DoraSchedule;
  why: string;
}

/** FLOP-equivalents one extra dispatch costs (launch and a round trip through memory). */
export const DISPATCH_COST = 4e6;
/** Workgroups a device needs in flight to be busy; fewer leave it partly idle. */
export const BUSY_WORKGROUPS = 32;

/** The single kernel's tile: the whole batch in one tile row up to 64, output rows 64 at a time. */
export function singleTile(n: number, out: number): { tm: number; tn: number } {
  const tm = n <= 16 ? 16 : n <= 32 ? 32 : 64;
  return { tm, tn: out <= 32 ? 32 : 64 };
}

const groups = (n: number, out: number, tm: number, tn: number) => Math.ceil(n / tm) * Math.ceil(out / tn);
const idle = (g: number) => (g >= BUSY_WORKGROUPS ? 1 : BUSY_WORKGROUPS / g);

/** Estimated cost of each schedule (FLOP-equivalents). */
export function estimate(s: DoraShape): Record<DoraSchedule, number> {
  const { n, inDim, out, rank: r } = s;
  const main = 2 * n * out * inDim * (s.dropout ? 2 : 1);
  const compose = 2 * n * out * r;
  const t = singleTile(n, out);
  const g1 = groups(n, out, t.tm, t.tn);
  const small = 2 * inDim * ((t.tm + t.tn + r) * r + t.tn);
  const single = (main + compose + g1 * small) * idle(g1) + DISPATCH_COST;
  const normGroups = Math.ceil(out / 64);
  const stats = 2 * inDim * (n * r + out * r + out + normGroups * r * r);
  const g2 = groups(n, out, 64, 64);
  const split = (main + compose) * idle(g2) + stats * idle(normGroups + Math.ceil(n / 64)) + 2 * DISPATCH_COST;
  return { single, split };
}

export function chooseSchedule(s: DoraShape, forced?: DoraSchedule): ScheduleChoice {
  const e = estimate(s);
  const best: DoraSchedule = forced ?? (e.single <= e.split ? "single" : "split");
  const fmt = (x: number) => `${(x / 1e6).toFixed(x < 1e7 ? 2 : 0)}M`;
  const how = forced ? `${forced} as configured` : `${best} is cheaper`;
  return { schedule: best, why: `${how}: single kernel ≈ ${fmt(e.single)}, split ≈ ${fmt(e.split)} FLOP-equivalents (batch ${s.n}, in ${s.inDim}, out ${s.out}, rank ${s.rank})` };
}
