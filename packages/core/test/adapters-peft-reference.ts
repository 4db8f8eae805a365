// PEFT's LoRA and DoRA formulas (DESIGN.md "DoRA, precisely") as naive float64 loops,
// independent of the library: the oracle the adapter tests compare against. Matrices are
// row-major Float64Arrays: W (out, in), A (r, in), B (out, r), m (out), x (n, in). `drop` is
// the dropout multiplier per element of x (0 or 1/(1 − rate)), so x' = x ⊙ drop.
// The norm is PEFT's ‖V‖, or √(‖V‖² + eps) when `eps` is given: the library's documented
// zero-row guard, whose effect on g (≈ eps / 2n²) would otherwise dominate the comparison of
// rows whose norm happens to be small.

export interface DoraInputs {
  readonly W: Float64Array;
  readonly A: Float64Array;
  readonly B: Float64Array;
  readonly m: Float64Array;
  readonly x: Float64Array;
  readonly bias?: Float64Array;
  readonly out: number;
  readonly inDim: number;
  readonly rank: number;
  readonly n: number;
  readonly s: number;
  readonly drop?: Float64Array;
  readonly eps?: number;
}

/** C (p, q) = X (p, k) · Y (q, k)ᵀ */
export function matmulT(X: Float64Array, Y: Float64Array, p: number, k: number, q: number): Float64Array {
  const C = new Float64Array(p * q);
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) {
    let acc = 0;
    for (let t = 0; t < k; t++) acc += X[i * k + t]! * Y[j * k + t]!;
    C[i * q + j] = acc;
  }
  return C;
}

/** C (p, q) = X (p, k) · Y (k, q) */
export function matmul(X: Float64Array, Y: Float64Array, p: number, k: number, q: number): Float64Array {
  const C = new Float64Array(p * q);
  for (let i = 0; i < p; i++) for (let t = 0; t < k; t++) {
    const v = X[i * k + t]!;
    for (let j = 0; j < q; j++) C[i * q + j] += v * Y[t * q + j]!;
  }
  return C;
}

/** Xᵀ for X (p, q). */
export function transpose(X: Float64Array, p: number, q: number): Float64Array {
  const T = new Float64Array(p * q);
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) T[j * p + i] = X[i * q + j]!;
  return T;
}

/** V = W + s·B·A, built outright (the test may; the library must not). */
export function direction(d: DoraInputs): Float64Array {
  const BA = matmul(d.B, d.A, d.out, d.rank, d.inDim);
  return d.W.map((w, i) => w + d.s * BA[i]!);
}

/** ‖V‖ per row (√(‖V‖² + eps) with eps). */
export function rowNorms(V: Float64Array, rows: number, cols: number, eps = 0): Float64Array {
  const n = new Float64Array(rows);
  for (let o = 0; o < rows; o++) {
    let acc = 0;
    for (let k = 0; k < cols; k++) acc += V[o * cols + k]! ** 2;
    n[o] = Math.sqrt(acc + eps);
  }
  return n;
}

export interface DoraForward {
  readonly y: Float64Array;
  readonly n: Float64Array;
  readonly g: Float64Array;
  /** x' */
  readonly xd: Float64Array;
  /** x'·Aᵀ (n, r) */
  readonly xa: Float64Array;
  /** z' = x'·Wᵀ + s·(x'·Aᵀ)·Bᵀ (n, out): what g multiplies. */
  readonly z: Float64Array;
}

/** y = x·Wᵀ + b + (g − 1) ⊙ (x'·Wᵀ) + g ⊙ s·(x'·Aᵀ)·Bᵀ with g = m / ‖W + s·B·A‖ (or a fixed norm). */
export function doraForward(d: DoraInputs, fixedNorm?: Float64Array): DoraForward {
  const { out, inDim, rank, n: N, s } = d;
  const xd = d.drop ? d.x.map((v, i) => v * d.drop![i]!) : d.x;
  const n = fixedNorm ?? rowNorms(direction(d), out, inDim, d.eps);
  const g = d.m.map((mo, o) => mo / n[o]!);
  const base = matmulT(d.x, d.W, N, inDim, out);
  const baseD = matmulT(xd, d.W, N, inDim, out);
  const xa = matmulT(xd, d.A, N, inDim, rank);
  const lora = matmulT(xa, d.B, N, rank, out);
  const y = new Float64Array(N * out);
  const z = new Float64Array(N * out);
  for (let i = 0; i < N; i++) for (let o = 0; o < out; o++) {
    const k = i * out + o;
    y[k] = base[k]! + (d.bias?.[o] ?? 0) + (g[o]! - 1) * baseD[k]! + g[o]! * s * lora[k]!;
    z[k] = baseD[k]! + s * lora[k]!;
  }
  return { y, n, g, xd, xa, z };
}

export interface DoraGrads {
  readonly dm: Float64Array;
  readonly dA: Float64Array;
  readonly dB: Float64Array;
  readonly dx: Float64Array;
}

/**
 * Gradients of ⟨gy, y⟩ by DESIGN.md's formulas: with the norm detached (PEFT) and, when
 * `detach` is false, the norm's term (dn/n) ⊙ V added to the gradient of V.
 */
export function doraGrads(d: DoraInputs, gy: Float64Array, detach: boolean): DoraGrads {
  const { out, inDim, rank, n: N, s } = d;
  const f = doraForward(d);
  const gz = gy.map((v, k) => v * f.g[k % out]!);
  const dm = new Float64Array(out);
  for (let i = 0; i < N; i++) for (let o = 0; o < out; o++) dm[o] += (gy[i * out + o]! * f.z[i * out + o]!) / f.n[o]!;
  const dB = matmul(transpose(gz, N, out), f.xa, out, N, rank).map((v) => v * s);
  const gzB = matmul(gz, d.B, N, out, rank);
  const dA = matmul(transpose(gzB, N, rank), f.xd, rank, N, inDim).map((v) => v * s);
  const gym1 = gy.map((v, k) => v * (f.g[k % out]! - 1));
  const dxd = matmul(gym1, d.W, N, out, inDim);
  const loraBack = matmul(gzB, d.A, N, rank, inDim);
  const direct = matmul(gy, d.W, N, out, inDim);
  const dx = direct.map((v, k) => v + (d.drop ? d.drop[k]! : 1) * (dxd[k]! + s * loraBack[k]!));
  if (!detach) {
    const V = direction(d);
    const dV = new Float64Array(out * inDim);
    for (let o = 0; o < out; o++) {
      let dn = 0;
      for (let i = 0; i < N; i++) dn -= (gy[i * out + o]! * d.m[o]! * f.z[i * out + o]!) / f.n[o]! ** 2;
      for (let k = 0; k < inDim; k++) dV[o * inDim + k] = (dn / f.n[o]!) * V[o * inDim + k]!;
    }
    matmul(transpose(d.B, out, rank), dV, rank, out, inDim).forEach((v, k) => (dA[k] += s * v));
    matmulT(dV, d.A, out, inDim, rank).forEach((v, k) => (dB[k] += s * v));
  }
  return { dm, dA, dB, dx };
}

/** LoRA: y = x·Wᵀ + b + s·(x'·Aᵀ)·Bᵀ, and the gradients of ⟨gy, y⟩ for A, B and x. */
export function loraReference(d: Omit<DoraInputs, "m">, gy: Float64Array): { y: Float64Array; dA: Float64Array; dB: Float64Array; dx: Float64Array } {
  const { out, inDim, rank, n: N, s } = d;
  const xd = d.drop ? d.x.map((v, i) => v * d.drop![i]!) : d.x;
  const xa = matmulT(xd, d.A, N, inDim, rank);
  const lora = matmulT(xa, d.B, N, rank, out);
  const base = matmulT(d.x, d.W, N, inDim, out);
  const y = base.map((v, k) => v + (d.bias?.[k % out] ?? 0) + s * lora[k]!);
  const dB = matmul(transpose(gy, N, out), xa, out, N, rank).map((v) => v * s);
  const gyB = matmul(gy, d.B, N, out, rank);
  const dA = matmul(transpose(gyB, N, rank), xd, rank, N, inDim).map((v) => v * s);
  const back = matmul(gyB, d.A, N, rank, inDim);
  const dx = matmul(gy, d.W, N, out, inDim).map((v, k) => v + (d.drop ? d.drop[k]! : 1) * s * back[k]!);
  return { y, dA, dB, dx };
}

/**
 * PEFT's DoRA embedding: rows of y are g ⊙ (table[id] + s · Aᵀ[id]·Bᵀ) with g = m / n and n
 * the norms of the columns of table + s·(B·A)ᵀ (one per embedding dimension, over the
 * vocabulary). table (vocab, dim), A (r, vocab), B (dim, r), m (dim).
 */
export function doraEmbeddingForward(
  e: { table: Float64Array; A: Float64Array; B: Float64Array; m: Float64Array; ids: readonly number[]; vocab: number; dim: number; rank: number; s: number; eps?: number },
  fixedNorm?: Float64Array,
): { y: Float64Array; n: Float64Array } {
  const { vocab, dim, rank, s } = e;
  const delta = transpose(matmul(e.B, e.A, dim, rank, vocab), dim, vocab); // (vocab, dim)
  const full = e.table.map((t, k) => t + s * delta[k]!);
  const n = fixedNorm ?? rowNorms(transpose(full, vocab, dim), dim, vocab, e.eps);
  const y = new Float64Array(e.ids.length * dim);
  e.ids.forEach((id, i) => {
    for (let c = 0; c < dim; c++) y[i * dim + c] = (e.m[c]! / n[c]!) * full[id * dim + c]!;
  });
  return { y, n };
}
