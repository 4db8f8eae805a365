// One device per test file: `const gpu = useDevice();` at the file's top level, then
// `gpu.device` / `gpu.target` inside tests. Created before the first test, disposed after the last.
import { afterAll, beforeAll } from "vitest";
import { createDevice, type Device } from "@dorafuse/runtime";
import { targetOf, type Target } from "@dorafuse/compiler";

export interface TestGpu {
  readonly device: Device;
  readonly target: Target;
}

export function useDevice(): TestGpu {
  let device: Device | undefined;
  let target: Target | undefined;
  beforeAll(async () => {
    device = await createDevice();
    target = targetOf(device);
  });
  afterAll(() => device?.dispose());
  return {
    get device(): Device {
      if (!device) throw new Error("useDevice(): the device is created in beforeAll; use it inside tests");
      return device;
    },
    get target(): Target {
      if (!target) throw new Error("useDevice(): the device is created in beforeAll; use it inside tests");
      return target;
    },
  };
}
