// The reference comparison of runtime tests: ‖out − ref‖ / ‖ref‖ against a float64 reference.

export function relativeError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`relativeError: ${out.length} values against a reference of ${ref.length}`);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < ref.length; i++) {
    err += (out[i]! - ref[i]!) ** 2;
    norm += ref[i]! ** 2;
  }
  return norm === 0 ? Math.sqrt(err) : Math.sqrt(err / norm);
}

/** c = a · b in float64, row-major. */
export function matmulF64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j]!;
    }
  }
  return c;
}
