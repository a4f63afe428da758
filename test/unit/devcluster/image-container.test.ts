// How the local nodes combine a pod's container with the image it names (Kubernetes' rules for command/args,
// env, user and working directory), find that image in an OCI layout, and assemble its root filesystem.
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { checkMountPaths, imageProcess, imageStartScript } from "../../../src/devcluster/image-container.js";
import { findInLayout, parseReference, REF_NAME_ANNOTATION, type LocalImage } from "../../../src/devcluster/local-images.js";

const scratch = mkdtempSync(join(tmpdir(), "image-container-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const rootfs = join(scratch, "rootfs");
mkdirSync(join(rootfs, "etc"), { recursive: true });
writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n");

const image: LocalImage = {
  layout: "/layout",
  resolvedDigest: "sha256:i",
  manifestDigest: "sha256:m",
  layers: [],
  rootfs,
  config: {
    architecture: "amd64",
    os: "linux",
    config: {
      User: "65532:65532",
      Entrypoint: ["ballast"],
      Cmd: ["--help"],
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production"],
      WorkingDir: "/app",
    },
  },
};
const pod = (securityContext: NonNullable<V1Pod["spec"]>["securityContext"] = {}): V1Pod => ({ spec: { containers: [], securityContext } });

describe("a container run from the image", () => {
  it("runs the image's entrypoint with the pod's args ($(VAR) expanded), as the image's user, in its working directory", () => {
    const proc = imageProcess(pod(), { name: "c", args: ["serve", "--port", "$(PORT)"] }, image, { PORT: "9000" }, { HOSTNAME: "p" });
    expect(proc).toMatchObject({ uid: 65532, gid: 65532, workingDir: "/app", argv: ["ballast", "serve", "--port", "9000"], readOnlyRootFilesystem: false });
    // The pod's env over the runtime's over the image's; HOME from the image's /etc/passwd.
    expect(proc.env).toEqual({ PATH: "/usr/local/bin:/usr/bin:/bin", NODE_ENV: "production", HOME: "/home/nonroot", HOSTNAME: "p", PORT: "9000" });
  });

  it("no args: the image's Cmd; a command replaces entrypoint and Cmd", () => {
    expect(imageProcess(pod(), { name: "c" }, image, {}, {}).argv).toEqual(["ballast", "--help"]);
    expect(imageProcess(pod(), { name: "c", command: ["node", "-e", "1"] }, image, {}, {}).argv).toEqual(["node", "-e", "1"]);
  });

  it("securityContext: container over pod over the image; runAsNonRoot refuses root as the kubelet does", () => {
    const proc = imageProcess(
      pod({ runAsUser: 1000, runAsGroup: 2000 }),
      { name: "c", securityContext: { runAsUser: 1001, readOnlyRootFilesystem: true } },
      image,
      {},
      {},
    );
    expect(proc).toMatchObject({ uid: 1001, gid: 2000, readOnlyRootFilesystem: true, env: expect.objectContaining({ HOME: "/" }) });
    expect(() => imageProcess(pod({ runAsNonRoot: true, runAsUser: 0 }), { name: "c" }, image, {}, {})).toThrow(
      "container has runAsNonRoot and image will run as root",
    );
  });

  it("the start script mounts the overlay, /proc, /dev, /etc/hosts and the volumes (parents first), then a read-only root, then chroots", () => {
    const proc = imageProcess(pod(), { name: "c", args: ["serve"], securityContext: { readOnlyRootFilesystem: true } }, image, {}, {});
    const mounts = [
      { hostPath: "/h/models", mountPath: "/models/store", readOnly: true },
      { hostPath: "/h/tmp", mountPath: "/tmp", readOnly: false },
      { hostPath: "/h/models-root", mountPath: "/models", readOnly: false },
    ];
    const script = imageStartScript({ rootfs, layerDir: "/c/rootfs", etcHosts: "/p/etc-hosts" }, mounts, proc).split("\n");
    const at = (needle: string) => script.findIndex((l) => l.includes(needle));
    expect(script[at("-t overlay")]).toContain(`lowerdir=${rootfs},upperdir=/c/rootfs/upper,workdir=/c/rootfs/work`);
    expect(at("mount --bind '/h/tmp'")).toBeLessThan(at("mount --bind '/h/models-root'"));
    expect(at("mount --bind '/h/models-root'")).toBeLessThan(at("mount --bind '/h/models'"));
    expect(script[at("mount --bind '/h/models'") + 1]).toBe("mount -o remount,bind,ro '/c/rootfs/merged/models/store'");
    expect(script.indexOf("mount -o remount,bind,ro '/c/rootfs/merged'")).toBeGreaterThan(at("mount --bind '/h/models'"));
    expect(script.at(-2)).toMatch(/^exec \S*unshare --root '\/c\/rootfs\/merged' --wd '\/app' --setgid 65532 --setuid 65532 -- 'ballast' 'serve'$/);
  });

  it("refuses a mount path through a symbolic link of the image, which would lead the host's tools out of it", () => {
    symlinkSync("/etc", join(rootfs, "escape"));
    expect(() => checkMountPaths(rootfs, [{ hostPath: "/h", mountPath: "/escape/x", readOnly: false }])).toThrow("passes through a symbolic link");
    expect(() => checkMountPaths(rootfs, [{ hostPath: "/h", mountPath: "/etc/new/dir", readOnly: false }])).not.toThrow();
  });
});

describe("finding the image a reference names in an OCI layout", () => {
  const layout = join(scratch, "layout");
  const blob = (content: object): string => {
    const text = JSON.stringify(content);
    const digest = `sha256:${createHash("sha256").update(text).digest("hex")}`;
    mkdirSync(join(layout, "blobs/sha256"), { recursive: true });
    writeFileSync(join(layout, "blobs", ...digest.split(":")), text);
    return digest;
  };
  const manifests = Object.fromEntries(
    ["amd64", "arm64"].map((arch) => {
      const config = blob({ architecture: arch, os: "linux", config: {} });
      return [arch, blob({ config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config }, layers: [] })];
    }),
  );
  const index = blob({
    manifests: ["amd64", "arm64"].map((arch) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: manifests[arch],
      platform: { architecture: arch, os: "linux" },
    })),
  });
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({ manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", digest: index, annotations: { [REF_NAME_ANNOTATION]: "0.1.0" } }] }),
  );

  it("parses tag and digest after the repository", () => {
    const repo = "ghcr.io/ballast-dev/ballast";
    expect(parseReference(repo, repo)).toEqual({ tag: "latest" });
    expect(parseReference(`${repo}:0.1.0`, repo)).toEqual({ tag: "0.1.0" });
    expect(parseReference(`${repo}@sha256:ab`, repo)).toEqual({ digest: "sha256:ab" });
    expect(parseReference(`${repo}:0.1.0@sha256:ab`, repo)).toEqual({ tag: "0.1.0", digest: "sha256:ab" });
  });

  it("by the index's digest or a platform manifest's, this node's platform; by tag only when asked", () => {
    expect(findInLayout(layout, { digest: index }, "linux/amd64", false)?.manifestDigest).toBe(manifests.amd64);
    expect(findInLayout(layout, { digest: index }, "linux/arm64", false)?.manifestDigest).toBe(manifests.arm64);
    expect(findInLayout(layout, { digest: manifests.amd64 }, "linux/amd64", false)?.config.architecture).toBe("amd64");
    expect(findInLayout(layout, { tag: "0.1.0" }, "linux/amd64", false)).toBeUndefined();
    expect(findInLayout(layout, { tag: "0.1.0" }, "linux/amd64", true)?.resolvedDigest).toBe(index);
    expect(findInLayout(layout, { tag: "0.2.0" }, "linux/amd64", true)).toBeUndefined();
    expect(findInLayout(layout, { digest: "sha256:00" }, "linux/amd64", false)).toBeUndefined();
    expect(findInLayout(join(scratch, "no-layout"), { digest: index }, "linux/amd64", false)).toBeUndefined();
  });

  it("a digest of another platform's manifest is an error naming both platforms", () => {
    expect(() => findInLayout(layout, { digest: manifests.arm64 }, "linux/amd64", false)).toThrow(
      "the image's root filesystem is linux/arm64; this node runs linux/amd64",
    );
  });
});
