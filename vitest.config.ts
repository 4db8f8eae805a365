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
    },
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/**/*.test.ts"],
    // One Dawn device per worker process; lavapipe uses every core, so keep workers few.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
