import { describe, expect, it } from "vitest";
import { reflectWgsl } from "@dorafuse/runtime";

describe("WGSL reflection", () => {
  it("finds bindings in any attribute order, skipping comments, and resolves workgroup sizes", () => {
    const wgsl = `
// @group(0) @binding(9) var<storage, read> commented: array<f32>;
/* a block /* nested */ @group(0) @binding(8) var<uniform> alsoCommented: vec4<f32>; */
const WIDTH = 32u;
override HEIGHT: u32 = 4;
struct Params { n: u32 }
@binding(1) @group(0) var<storage,read_write> out : array<f32>;
@group(0)
  @binding(0)
  var<storage> input: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
var<workgroup> tile: array<f32, 64>;

@compute @workgroup_size(WIDTH, HEIGHT)
fn main() {}

@compute @workgroup_size(8 * 8) fn computed() {}
fn helper() {}
`;
    const r = reflectWgsl(wgsl);
    expect(r.bindings.map(({ group, binding, name, access }) => [group, binding, name, access])).toEqual([
      [0, 1, "out", "read_write"],
      [0, 0, "input", "read"],
      [0, 2, "params", "uniform"],
    ]);
    expect(r.bindings[1]!.text).toBe("@group(0) @binding(0) var<storage> input");
    expect(r.entryPoints).toEqual([{ name: "main", workgroupSize: [32, 4, 1] }, { name: "computed" }]);
  });
});
