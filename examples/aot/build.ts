// Compiles every entry of model.ts ahead of time, as a build script would:
//   node --import tsx examples/aot/build.ts   (or from compiled JavaScript: compileModule
//   registers tsx's loader itself to import the TypeScript model)
import { fileURLToPath } from "node:url";
import { compileModule } from "@dorafuse/compiler";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
for (const entry of ["train", "validate", "forward"]) {
  const r = await compileModule({ file: here("./model.ts"), entry, out: here("./gen") });
  console.log(`${entry}: ${r.totals.kernels} kernels, ${r.totals.dispatches} dispatches per call → ${r.module}`);
}
