// The building blocks of contraction kernels (kernels/contraction.ts, and the DoRA kernels until
// they are expressed as contraction groups): K-loops that stage tiles of their operands
// in workgroup memory (one array, `sm`, at offsets) and accumulate products of those tiles in
// registers. A product is either a matrix product (each invocation owns rm × rn micro-tiles
// of the m × n result) or a row dot (each invocation owns whole rows: Σ_k L[i,k]·R[i,k]).
// Several products share one loop's tiles — the forward's x·Wᵀ, W·Aᵀ and ‖W‖² all read the
// same W tile — which is the point of fusing them. Invocations own their outputs in a fixed
// pattern (`owned`), so epilogues read the accumulators they hold without a reduction.
import { template } from "../wgsl/template.js";

export interface StagedTile {
  name: string;
  rows: number;
  cols: number;
  /** Global index of the tile's element (0, 0), as u32 expressions (one usually mentions k0). */
  row0: string;
  col0: string;
  /** Elements at or past these global indices are zero (padding of the last tile). */
  rowEnd: number;
  colEnd: number;
  /** f32 expression of the element at global (r, c). */
  load: (r: string, c: string) => string;
  /** Statements computing what `load` reads (a fused prologue), run for in-range elements. */
  prelude?: readonly string[];
}

/** A tile read as an operand: left operands index (i, k), right ones (k, j); `t` reads it transposed. */
export type Operand = readonly [tile: string, transposed: boolean];

export interface Gemm {
  kind: "gemm";
  acc: string;
  left: Operand;
  right: Operand;
  m: number;
  n: number;
  rm: number;
  rn: number;
}

export interface RowDot {
  kind: "rowdot";
  acc: string;
  left: Operand;
  /** Absent: a row sum of the left operand alone. */
  right?: Operand;
  m: number;
}

export type Product = Gemm | RowDot;

const stage = template(
  "tile-stage",
  `
for (var e = lid; e < {{count}}u; e += {{threads}}u) {
  let tr = {{row0}} + e / {{cols}}u;
  let tc = {{col0}} + e % {{cols}}u;
  var v = 0.0;
  if (tr < {{rowEnd}}u && tc < {{colEnd}}u) {
    {{prelude}}
    v = {{load}};
  }
  sm[{{offset}}u + e] = v;
}
`,
);

const loopFrame = template(
  "tile-loop",
  `
for (var k0 = 0u; k0 < {{k}}u; k0 += {{tk}}u) {
  {{stage}}
  workgroupBarrier();
  {{products}}
  workgroupBarrier();
}
`,
);

const micro = (p: Gemm) => (p.m / p.rm) * (p.n / p.rn);

export class TileProgram {
  /** Floats of workgroup memory the kernel needs (the largest extent any part used). */
  smem = 0;
  private readonly placed = new Map<string, { offset: number; cols: number }>();

  constructor(readonly threads: number) {}

  /** Invocation slots per product: how many micro-tiles (or rows) each invocation owns. */
  slots(p: Product): number {
    return Math.ceil((p.kind === "gemm" ? micro(p) : p.m) / this.threads);
  }

  /** The declaration of a product's accumulators (zero-initialized, as WGSL function variables are). */
  declare(p: Product): string {
    return `var ${p.acc}: array<f32, ${this.size(p)}>;`;
  }

  /**
   * Zeroes a product's accumulators, to run it again in a loop: a `var` declared inside a
   * WGSL loop body was found to keep its value from the previous iteration on lavapipe.
   */
  reset(p: Product): string {
    return `${p.acc} = array<f32, ${this.size(p)}>();`;
  }

  private size(p: Product): number {
    return this.slots(p) * (p.kind === "gemm" ? p.rm * p.rn : 1);
  }

  /** Reserves workgroup memory for an epilogue region; returns its offset. */
  reserve(offset: number, size: number): number {
    this.smem = Math.max(this.smem, offset + size);
    return offset;
  }

  /** Element (row, col) of an operand: tile[row][col], or tile[col][row] when transposed. */
  private at([tile, t]: Operand, row: string, col: string): string {
    const p = this.placed.get(tile);
    if (!p) throw new Error(`tile program: tile ${tile} is not staged in this loop`);
    const [r, c] = t ? [col, row] : [row, col];
    return `sm[${p.offset}u + (${r}) * ${p.cols}u + ${c}]`;
  }

  /** A loop over k ∈ [0, k) in steps of tk: stage `tiles` from `base`, then run `products`. */
  loop(k: number, tk: number, tiles: readonly StagedTile[], products: readonly Product[], base = 0): string[] {
    this.placed.clear();
    let at = base;
    const staged = tiles.map((t) => {
      this.placed.set(t.name, { offset: at, cols: t.cols });
      const code = stage({
        count: String(t.rows * t.cols), threads: String(this.threads), row0: t.row0, col0: t.col0, cols: String(t.cols),
        rowEnd: String(t.rowEnd), colEnd: String(t.colEnd), load: t.load("tr", "tc"), prelude: [...(t.prelude ?? [])], offset: String(at),
      });
      at += t.rows * t.cols;
      return `{ // ${t.name}: ${t.rows} × ${t.cols}\n${code}\n}`;
    });
    this.smem = Math.max(this.smem, at);
    const body = products.map((p) => this.product(p, tk));
    return loopFrame({ k: String(k), tk: String(tk), stage: staged, products: body }).split("\n");
  }

  private product(p: Product, tk: number): string {
    const lines = p.kind === "gemm"
      ? [
          `let mi = (q / ${p.n / p.rn}u) * ${p.rm}u;`,
          `let ni = (q % ${p.n / p.rn}u) * ${p.rn}u;`,
          `for (var kk = 0u; kk < ${tk}u; kk++) {`,
          `  for (var i = 0u; i < ${p.rm}u; i++) {`,
          `    let av = ${this.at(p.left, "mi + i", "kk")};`,
          `    for (var j = 0u; j < ${p.rn}u; j++) { ${p.acc}[${this.slot(p, "i * " + p.rn + "u + j")}] += av * ${this.at(p.right, "kk", "ni + j")}; }`,
          `  }`,
          `}`,
        ]
      : [`for (var kk = 0u; kk < ${tk}u; kk++) { ${p.acc}[${this.slot(p, "0u")}] += ${this.at(p.left, "q", "kk")}${p.right ? ` * ${this.at(p.right, "q", "kk")}` : ""}; }`];
    return this.perSlot(p, lines).join("\n");
  }

  private slot(p: Product, inner: string): string {
    const per = p.kind === "gemm" ? p.rm * p.rn : 1;
    return this.slots(p) === 1 ? inner : `p * ${per}u + ${inner}`;
  }

  /** `lines` once per slot the invocation owns, with `q` the micro-tile (or row) index. */
  private perSlot(p: Product, lines: readonly string[]): string[] {
    const count = p.kind === "gemm" ? micro(p) : p.m;
    const inner = [`let q = lid${this.slots(p) === 1 ? "" : ` + p * ${this.threads}u`};`, `if (q < ${count}u) {`, ...lines.map((l) => `  ${l}`), `}`];
    if (this.slots(p) === 1) return [`{ // ${p.acc}`, ...inner.map((l) => `  ${l}`), `}`];
    // unrolled: with p a constant every accumulator index folds (lavapipe hung on some loops
    // over p that indexed private arrays dynamically)
    return Array.from({ length: this.slots(p) }, (_, k) => [`{ // ${p.acc}, slot ${k}`, `  let p = ${k}u;`, ...inner.map((l) => `  ${l}`), `}`]).flat();
  }

  /**
   * Code run for each row of a row-owned product (gemm with rm = 1, or rowdot) this invocation
   * holds: `q` is the row, `index(j)` the accumulator index of its column j, `slot` the index of
   * per-row values (rowdot accumulators, or arrays the caller declares with `slots` entries).
   */
  eachRow(p: Product, body: (q: string, index: (j: string) => string, slot: string) => readonly string[]): string[] {
    if (p.kind === "gemm" && !(p.rm === 1 && p.rn === p.n)) throw new Error(`tile program: ${p.acc} is not row-owned`);
    const per = p.kind === "gemm" ? p.rn : 1;
    const one = this.slots(p) === 1;
    return this.perSlot(p, body("q", (j) => (one ? j : `p * ${per}u + ${j}`), one ? "0u" : "p"));
  }

  /**
   * Code visiting every element of `p` this invocation holds: `body(row, col, value)` sees the
   * element's row and column in the product (u32 expressions over the counters i and j, which
   * the body must not redeclare) and its accumulated value.
   */
  owned(p: Product, body: (row: string, col: string, value: string, index: string) => readonly string[]): string[] {
    if (p.kind === "rowdot") return this.perSlot(p, body("q", "0u", `${p.acc}[${this.slot(p, "0u")}]`, this.slot(p, "0u")));
    return this.perSlot(p, [
      `let mi = (q / ${p.n / p.rn}u) * ${p.rm}u;`,
      `let ni = (q % ${p.n / p.rn}u) * ${p.rn}u;`,
      `for (var i = 0u; i < ${p.rm}u; i++) {`,
      `  for (var j = 0u; j < ${p.rn}u; j++) {`,
      ...body("mi + i", "ni + j", `${p.acc}[${this.slot(p, "i * " + p.rn + "u + j")}]`, this.slot(p, "i * " + p.rn + "u + j")).map((l) => `    ${l}`),
      `  }`,
      `}`,
    ]);
  }
}

/**
 * Register tiles for an m × n product on `threads` invocations: up to 8 rows per invocation
 * (neighbouring invocations then read the same left-operand values), and as few columns as
 * keep every invocation busy. Owning whole rows instead measures several times slower on a
 * CPU adapter, which runs neighbouring invocations as SIMD lanes.
 */
export function tileFor(m: number, n: number, threads: number): { rm: number; rn: number } {
  const rm = registerSide(m);
  let rn = 1;
  while (rn < 8 && n % (2 * rn) === 0 && (m / rm) * (n / rn) > threads) rn *= 2;
  return { rm, rn };
}

/**
 * Register tiles for a workgroup's main tm × tn product: 8 × 8 per invocation where that
 * leaves at least 32 invocations, smaller otherwise. (Few invocations doing much each compile
 * very slowly on lavapipe, whose JIT unrolls every loop of the kernel: 8 invocations of 8 × 8
 * took it half a minute.)
 */
export function mainTile(tm: number, tn: number): { rm: number; rn: number } {
  let [rm, rn] = [registerSide(tm), registerSide(tn)];
  while ((tm / rm) * (tn / rn) < 32 && (rm > 2 || rn > 2)) {
    if (rm >= rn) rm /= 2;
    else rn /= 2;
  }
  return { rm, rn };
}

/** The largest power of two up to `max` that divides `n`: a register-tile side. */
export const registerSide = (n: number, max = 8): number => {
  let r = 1;
  while (r < max && n % (2 * r) === 0) r *= 2;
  return r;
};
