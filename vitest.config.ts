import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// Tests import the packages' TypeScript sources directly, so `vitest` needs no build first.
export default defineConfig({
  resolve: {
    alias: {
      "@dorafuse/core": src("core"),
      "@dorafuse/compiler": src("compiler"),
      "@dorafuse/runtime": src("runtime"),
      "@dorafuse/models": src("models"),
    },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/**/*.test.ts"],
    // One Dawn device per worker process; lavapipe uses every core, so keep workers few.
    pool: "forks",
    maxWorkers: 2,
    // lavapipe JIT-compiles every kernel at its first dispatch (seconds each; a training step
    // has hundreds) and caches it on disk: a first run on a new machine is many times slower
    // than the next, and that is not what a test measures. Hangs still end here.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
