// Temporary folders for a test file: `const tempDir = useTempDirs();` at the top level, then
// `await tempDir()` in tests; all of them are removed after the file's last test.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

export function useTempDirs(prefix = "dorafuse-test-"): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  return async () => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}
