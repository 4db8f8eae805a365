// Strided index maps: the one loop behind transpose, broadcast, slice, pad, concat and reduce
// in the reference interpreter. `stridedIndex(shape, strides, offset)` lists, for every
// position of `shape` in row-major order, `offset + Σ index[k] * strides[k]`.

export function stridedIndex(shape: readonly number[], strides: readonly number[], offset = 0): Float64Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  if (n === 0) return out;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let pos = offset;
  for (let i = 0; i < n; i++) {
    out[i] = pos;
    // odometer: bump the last axis, carry into earlier ones
    for (let k = rank - 1; k >= 0; k--) {
      idx[k]!++;
      pos += strides[k]!;
      if (idx[k]! < shape[k]!) break;
      pos -= strides[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
  return out;
}
