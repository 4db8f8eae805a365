// Shapes as types: the fixture in test-types/ must type-check, which also means each of its
// `// @ts-expect-error` lines is still an error (an unused one is TS2578). The count guards
// against the fixture being emptied or its errors silently dropped.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const fixture = join(root, "packages/core/test-types");
const MIN_EXPECTED_ERRORS = 55;

describe("type-level shape checks", () => {
  it("the fixture holds many expected errors, each on a line of code", () => {
    const files = readdirSync(fixture).filter((f) => f.endsWith(".ts"));
    let count = 0;
    for (const f of files) {
      const lines = readFileSync(join(fixture, f), "utf8").split("\n");
      lines.forEach((l, i) => {
        if (!l.trim().startsWith("// @ts-expect-error")) return;
        count++;
        // the directive must annotate a statement, not another comment or nothing
        expect(lines[i + 1]?.trim() ?? "", `${f}:${i + 2}`).toMatch(/^[^/\s]/);
      });
    }
    expect(count).toBeGreaterThanOrEqual(MIN_EXPECTED_ERRORS);
  });

  it("tsc accepts the fixture: good uses type-check, every bad use is an error", () => {
    const r = spawnSync(join(root, "node_modules/.bin/tsc"), ["-p", fixture, "--noEmit"], { cwd: root, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 120_000);
});
