// Runtime shape errors: where the types cannot decide (dimensions only known as `number`),
// the same rules run at trace time and throw a ShapeError naming the op, both shapes and the
// line of the caller's code — this file — not a line inside dorafuse.
import { describe, expect, it } from "vitest";
import { ShapeError, TraceError, concat, spec, trace, where, type Tensor } from "@dorafuse/core";

type Wide = Tensor<number[], "f32">;
type WideI = Tensor<number[], "i32">;

let marked = 0;
/** Records the line it is called from; ops written on the same line share it. */
function mark(): void {
  const frame = new Error().stack!.split("\n")[2]!;
  marked = Number(/:(\d+):\d+\)?$/.exec(frame)![1]);
}

const wide = (...shape: number[]) => spec(shape as number[], "f32");

/** Traces `fn` on `specs`, expecting a ShapeError from the op on the line `mark()` is on. */
function expectShapeError(fn: (...xs: never[]) => unknown, specs: unknown[], op: string, mentions: string[], opts = {}): ShapeError {
  marked = 0;
  let err: unknown;
  try {
    trace(fn as never, specs as never, opts);
  } catch (e) {
    err = e;
  }
  expect(err, "expected a ShapeError").toBeInstanceOf(ShapeError);
  const e = err as ShapeError;
  expect(marked).toBeGreaterThan(0);
  expect(e.op).toBe(op);
  expect(e.message.startsWith(`${op}:`)).toBe(true);
  for (const m of mentions) expect(e.message).toContain(m);
  expect(e.site).toMatch(new RegExp(`(^|/)packages/core/test/shape-errors\\.test\\.ts:${marked}:\\d+$`));
  expect(e.message).toContain(`\n    at packages/core/test/shape-errors.test.ts:${marked}:`);
  expect(e.message).not.toMatch(/packages[\\/]core[\\/]src/);
  return e;
}

describe("runtime ShapeError names the op, the shapes and the caller's line", () => {
  it("matmul with different contracting dimensions", () => {
    expectShapeError((a: Wide, b: Wide) => (mark(), a.matmul(b)), [wide(8, 16), wide(32, 4)], "matmul", ["[8,16]", "[32,4]", "16 vs 32"]);
  });

  it("matmul whose batch dimensions do not broadcast", () => {
    expectShapeError((a: Wide, b: Wide) => (mark(), a.matmul(b)), [wide(3, 2, 4), wide(5, 4, 2)], "matmul", ["[3,2,4]", "[5,4,2]"]);
  });

  it("add of shapes that do not broadcast", () => {
    expectShapeError((a: Wide, b: Wide) => (mark(), a.add(b)), [wide(2, 3), wide(4)], "add", ["[2,3]", "[4]"]);
  });

  it("comparison and where of shapes that do not broadcast", () => {
    expectShapeError((a: Wide, b: Wide) => (mark(), a.lt(b)), [wide(5, 1, 3), wide(2, 4)], "lt", ["[5,1,3]", "[2,4]"]);
    expectShapeError((a: Wide, b: Wide) => (mark(), where(a.gt(0) as never, a as never, b)), [wide(2, 3), wide(2, 2)], "where", ["[2,3]", "[2,2]"]);
  });

  it("reshape to a different element count", () => {
    expectShapeError((a: Wide) => (mark(), a.reshape([5, 5] as number[])), [wide(4, 6)], "reshape", ["[4,6]", "[5,5]", "24", "25"]);
  });

  it("reduction over an axis the tensor lacks", () => {
    expectShapeError((a: Wide) => (mark(), a.sum(2 as number)), [wide(4, 6)], "sum", ["axis 2", "[4,6]"]);
  });

  it("transpose with something other than a permutation", () => {
    expectShapeError((a: Wide) => (mark(), a.transpose([0, 0, 1] as number[])), [wide(2, 3, 4)], "transpose", ["[0,0,1]", "[2,3,4]"]);
  });

  it("concat of shapes that differ off the axis", () => {
    expectShapeError((a: Wide, b: Wide) => (mark(), concat([a, b] as Wide[], 0)), [wide(2, 3), wide(2, 4)], "concat", ["f32[2,3]", "f32[2,4]"]);
  });

  it("slice out of range, squeeze of a non-1 axis, expandDims out of range", () => {
    expectShapeError((a: Wide) => (mark(), a.slice([[2, 9]] as never)), [wide(4, 6)], "slice", ["[2,9]", "[4,6]"]);
    expectShapeError((a: Wide) => (mark(), a.squeeze(1 as number)), [wide(4, 6)], "squeeze", ["axis 1", "[4,6]"]);
    expectShapeError((a: Wide) => (mark(), a.expandDims(4 as number)), [wide(4, 6)], "expandDims", ["axis 4", "[4,6]"]);
  });

  it("gather along an axis out of range", () => {
    expectShapeError((a: Wide, i: WideI) => (mark(), a.gather(i, 3 as number)), [wide(4, 6), spec([2] as number[], "i32")], "gather", ["axis 3", "[4,6]"]);
  });

  it("broadcastTo a shape the tensor does not broadcast to", () => {
    expectShapeError((a: Wide) => (mark(), a.broadcastTo([2, 5] as number[])), [wide(3)], "broadcastTo", ["[3]", "[2,5]"]);
  });

  it("reshape to a named dimension that is not bound", () => {
    const e = expectShapeError((a: Wide) => (mark(), a.reshape(["batch", -1] as never)), [wide(4, 6)], "reshape", ['"batch"', "not bound"]);
    expect(e.message).toContain("dims");
  });

  it("a spec naming an unbound dimension is a TraceError naming the argument", () => {
    expect(() => trace((x) => x.sum(), [spec(["batch", 3])])).toThrow(TraceError);
    expect(() => trace((x) => x.sum(), [spec(["batch", 3])], { names: ["tokens"] })).toThrow(/tokens.*"batch"/);
  });

  it("named dimensions bound at trace time pass the same rules", () => {
    const t = trace((x, w) => x.matmul(w).reshape(["batch", 2, 2]), [spec(["batch", 3]), spec([3, 4])], { dims: { batch: 5 } });
    expect(t.outputs[0]!.shape).toEqual([5, 2, 2]);
    expect(() =>
      trace((x: Wide, w: Wide) => x.matmul(w), [spec(["batch", 3]) as never, spec([2, 4])], { dims: { batch: 5 } }),
    ).toThrow(ShapeError);
  });
});
