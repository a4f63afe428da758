// A real file system that fills up, for tests of what happens on a full disk: a tmpfs (needs root, or
// CAP_SYS_ADMIN, as the test machines and CI containers run). ENOSPC comes from the kernel, short writes included.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach } from "vitest";

/** Returns a function that mounts a fresh tmpfs of `bytes`; all are unmounted and removed after each test. */
export function useSmallDisks(prefix: string): (bytes: number) => string {
  const mounts: string[] = [];
  afterEach(() => {
    for (const dir of mounts.splice(0)) {
      execFileSync("umount", ["-l", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  return (bytes) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir], { stdio: "pipe" });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`this test mounts a ${bytes}-byte tmpfs to fill a disk and needs root for it: ${(err as Error).message}`, { cause: err });
    }
    mounts.push(dir);
    return dir;
  };
}
