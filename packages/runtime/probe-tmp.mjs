import { create, globals } from "webgpu";
Object.assign(globalThis, globals);
for (const opts of [["adapter=foo"], ["backend=bogus"], ["backend=null"], ["backend=opengl"], ["adapter=llvmpipe"]]) {
  try {
    const gpu = create(opts);
    const a = await gpu.requestAdapter();
    console.log(opts, "->", a && a.info.description);
  } catch (e) { console.log(opts, "threw", e.message); }
}
