// One device per test file: `const gpu = useDevice();` in the file's top level, then
// `gpu.device` inside tests. It is created before the first test and disposed after the last.

import { afterAll, beforeAll } from "vitest";
import { createDevice, type Device } from "@dorafuse/runtime";

export function useDevice(): { readonly device: Device } {
  let device: Device | undefined;
  beforeAll(async () => {
    device = await createDevice();
  });
  afterAll(() => device?.dispose());
  return {
    get device(): Device {
      if (!device) throw new Error("useDevice(): the device is created in beforeAll; use it inside tests");
      return device;
    },
  };
}
