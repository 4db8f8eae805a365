// Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11; the Random123 reference and JAX's PRNG), in plain u32 arithmetic. This is the exact
// reference the WGSL kernels reproduce: the same (key, counter) gives the same bits.

const ROT = [13, 15, 26, 6, 17, 29, 16, 24] as const;
const PARITY = 0x1bd11bda; // Threefish key-schedule parity constant

const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;

/** threefry2x32_20(key = (k0, k1), counter = (c0, c1)) → two u32 words. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ PARITY) >>> 0];
  let x0 = (c0 + ks[0]!) >>> 0;
  let x1 = (c1 + ks[1]!) >>> 0;
  // five groups of four rounds, with a key injection after each group
  for (let g = 0; g < 5; g++) {
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, ROT[(g % 2) * 4 + r]!);
      x1 = (x1 ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(g + 1) % 3]!) >>> 0;
    x1 = (x1 + ks[(g + 2) % 3]! + g + 1) >>> 0;
  }
  return [x0, x1];
}

/** The bits `randomBits` produces: element i is word 0 of threefry2x32(key, (i, 0)). */
export function randomBitsReference(k0: number, k1: number, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = threefry2x32(k0, k1, i, 0)[0];
  return out;
}

/** The WGSL twin of `threefry2x32`, for kernels that generate random bits. */
export const THREEFRY_WGSL = `fn df_rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }
fn df_threefry2x32(key: vec2<u32>, ctr: vec2<u32>) -> vec2<u32> {
  let ks = array<u32, 3>(key.x, key.y, key.x ^ key.y ^ 0x1bd11bdau);
  let rot = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
  var x0 = ctr.x + ks[0];
  var x1 = ctr.y + ks[1];
  for (var g = 0u; g < 5u; g++) {
    for (var r = 0u; r < 4u; r++) {
      x0 = x0 + x1;
      x1 = df_rotl(x1, rot[(g % 2u) * 4u + r]);
      x1 = x1 ^ x0;
    }
    x0 = x0 + ks[(g + 1u) % 3u];
    x1 = x1 + ks[(g + 2u) % 3u] + g + 1u;
  }
  return vec2<u32>(x0, x1);
}`;
