// A tiled f32 matmul in workgroup memory, with bounds checks so any m, k, n works, and the
// plan that runs it. The doctor and the benchmark measure GFLOP/s with it; the tests check
// it against the CPU at sizes that are not multiples of the tile.

import type { ExecutionPlan } from "../plan.js";
import { kernelPlan } from "./kernel-plan.js";
import { fillTemplate, u32 } from "./template.js";

const MATMUL_WGSL = `// dorafuse runtime kernel "matmul": c[m, n] = a[m, k] · b[k, n], row-major f32.
// Each workgroup computes a TILE_M x TILE_N tile of c, stepping along k TILE_K at a time
// through workgroup memory; each invocation accumulates THREAD_M x THREAD_N outputs,
// strided by the workgroup size so neighbouring invocations touch neighbouring columns.
// Loads past the edges read zeros and stores past them are skipped, so any m, k, n work.
const TILE_M = {{TILE_M}};
const TILE_N = {{TILE_N}};
const TILE_K = {{TILE_K}};
const THREAD_M = {{THREAD_M}};
const THREAD_N = {{THREAD_N}};
const GROUP_X = {{GROUP_X}};
const GROUP_Y = {{GROUP_Y}};
const INVOCATIONS = GROUP_X * GROUP_Y;

struct Dims {
  m: u32,
  k: u32,
  n: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> tileA: array<f32, TILE_M * TILE_K>;
var<workgroup> tileB: array<f32, TILE_K * TILE_N>;

@compute @workgroup_size(GROUP_X, GROUP_Y, 1)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>,
        @builtin(local_invocation_index) flat: u32) {
  let firstRow = group.y * TILE_M;
  let firstCol = group.x * TILE_N;
  var acc: array<f32, THREAD_M * THREAD_N>;
  var aReg: array<f32, THREAD_M>;
  var bReg: array<f32, THREAD_N>;

  for (var k0 = 0u; k0 < dims.k; k0 += TILE_K) {
    for (var i = flat; i < TILE_M * TILE_K; i += INVOCATIONS) {
      let row = firstRow + i / TILE_K;
      let col = k0 + i % TILE_K;
      var value = 0.0;
      if (row < dims.m && col < dims.k) {
        value = a[row * dims.k + col];
      }
      tileA[i] = value;
    }
    for (var i = flat; i < TILE_K * TILE_N; i += INVOCATIONS) {
      let row = k0 + i / TILE_N;
      let col = firstCol + i % TILE_N;
      var value = 0.0;
      if (row < dims.k && col < dims.n) {
        value = b[row * dims.n + col];
      }
      tileB[i] = value;
    }
    workgroupBarrier();

    for (var kk = 0u; kk < TILE_K; kk++) {
      for (var tm = 0u; tm < THREAD_M; tm++) {
        aReg[tm] = tileA[(local.y + tm * GROUP_Y) * TILE_K + kk];
      }
      for (var tn = 0u; tn < THREAD_N; tn++) {
        bReg[tn] = tileB[kk * TILE_N + local.x + tn * GROUP_X];
      }
      for (var tm = 0u; tm < THREAD_M; tm++) {
        for (var tn = 0u; tn < THREAD_N; tn++) {
          acc[tm * THREAD_N + tn] = fma(aReg[tm], bReg[tn], acc[tm * THREAD_N + tn]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var tm = 0u; tm < THREAD_M; tm++) {
    let row = firstRow + local.y + tm * GROUP_Y;
    for (var tn = 0u; tn < THREAD_N; tn++) {
      let col = firstCol + local.x + tn * GROUP_X;
      if (row < dims.m && col < dims.n) {
        c[row * dims.n + col] = acc[tm * THREAD_N + tn];
      }
    }
  }
}
`;

export interface MatmulTile {
  /** Rows and columns of c per workgroup, and the step along k. */
  m: number;
  n: number;
  k: number;
  /** Outputs per invocation along rows and columns (m / threadM by n / threadN invocations). */
  threadM: number;
  threadN: number;
}

/**
 * 64 invocations, each accumulating an 8x8 block: the fastest of the shapes the benchmark
 * compares on lavapipe, and a common choice on GPUs (64 accumulators stay in registers).
 */
export const DEFAULT_MATMUL_TILE: MatmulTile = { m: 64, n: 64, k: 16, threadM: 8, threadN: 8 };

/** The WGSL of the tiled matmul for one tile shape. */
export function matmulWgsl(tile: MatmulTile = DEFAULT_MATMUL_TILE): string {
  if (tile.m % tile.threadM !== 0 || tile.n % tile.threadN !== 0) {
    throw new RangeError(`matmul tile ${tile.m}x${tile.n} is not divisible by the per-invocation block ${tile.threadM}x${tile.threadN}`);
  }
  return fillTemplate("matmul", MATMUL_WGSL, {
    TILE_M: u32(tile.m),
    TILE_N: u32(tile.n),
    TILE_K: u32(tile.k),
    THREAD_M: u32(tile.threadM),
    THREAD_N: u32(tile.threadN),
    GROUP_X: u32(tile.n / tile.threadN),
    GROUP_Y: u32(tile.m / tile.threadM),
  });
}

/** A plan computing output "c" = input "a" (f32[m,k]) · input "b" (f32[k,n]). */
export function matmulPlan(m: number, k: number, n: number, tile: MatmulTile = DEFAULT_MATMUL_TILE): ExecutionPlan {
  for (const [name, d] of [["m", m], ["k", k], ["n", n]] as const) {
    if (!Number.isSafeInteger(d) || d <= 0) throw new RangeError(`matmulPlan: ${name} must be a positive integer, found ${d}`);
  }
  return kernelPlan({
    name: "matmul",
    wgsl: matmulWgsl(tile),
    workgroupSize: [tile.n / tile.threadN, tile.m / tile.threadM, 1],
    workgroups: [Math.ceil(n / tile.n), Math.ceil(m / tile.m), 1],
    tensors: [
      { name: "a", shape: [m, k], dtype: "f32", role: "input", access: "read" },
      { name: "b", shape: [k, n], dtype: "f32", role: "input", access: "read" },
      { name: "c", shape: [m, n], dtype: "f32", role: "output", access: "read_write" },
      { name: "dims", shape: [3], dtype: "u32", role: "constant", access: "uniform", data: new Uint32Array([m, k, n]), bindSize: 16 },
    ],
    flops: 2 * m * n * k,
    bytes: 4 * (m * k + k * n + m * n),
  });
}
