// `make image` as a user sees it: given this commit, the build writes an OCI layout and docker-load tarballs
// whose digests do not change from build to build; the amd64 image, unpacked and run in a chroot with only
// its own files, user and environment, prints its version, trains a model on the wasm backend and serves it
// over OIP v2; `ballast dev`/`demo` say in one line that the image lacks their packages; `make image-push`
// pushes the same index; podman loads the tarballs; the local nodes' runtime runs it (read-only root, its user);
// the arm64 image prints its version under qemu. One file, because the builds must not race for the caches and
// the 2 cores (hack/image/ensure-image.sh's lock keeps the integration suite's build from racing this one).
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splitWeather, weatherCsv } from "../../../src/demo/weather-data.js";
import { ballastCacheDir } from "../../../src/devcluster/binaries.js";
import { launchContainer } from "../../../src/devcluster/container-process.js";
import { imageProcess, imageStartScript } from "../../../src/devcluster/image-container.js";
import { LocalImages } from "../../../src/devcluster/local-images.js";
import { inferBody, loadWeather } from "../runtime/weather-fixture.js";
import { postJson, waitUntilReady } from "../runtime/local-processes.js";
import { dockerfileStages } from "./dockerfile.js";
import { buildImage, ensureImage, finished, platformImage, repoRoot, runInImage, unpackRootfs, type ImageDigests, type PlatformImage } from "./oci-image.js";

const run = promisify(execFile);
const shipped = join(repoRoot, "dist/image");
const version = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");
const BUILD_MS = 600_000;

/** `ballast train` of the weather model inside an image: a short wasm run over a CSV the test wrote there. */
const trainWeatherArgs = (csv: string, storeDir: string): string[] =>
  ["train", "--data", csv, "--store", `file://${storeDir}`, "--model", "weather", "--label", "weather"].concat([
    "--features",
    "precipitation,temp_max,temp_min,wind",
    "--epochs",
    "2",
    "--backend",
    "wasm",
  ]);

let digests: ImageDigests;
const scratch = mkdtempSync(join(tmpdir(), "ballast-image-test-"));

beforeAll(async () => {
  digests = await ensureImage(shipped);
}, BUILD_MS);

// The scratch dir holds unpacked root filesystems and podman's storage: seconds to delete on a loaded machine.
afterAll(() => rmSync(scratch, { recursive: true, force: true }), 120_000);

describe("make image", () => {
  it("writes a multi-arch OCI layout and one docker-load tarball per architecture, labelled with the commit", async () => {
    expect(Object.keys(digests.platforms).sort()).toEqual(["linux/amd64", "linux/arm64"]);
    for (const arch of ["amd64", "arm64"]) {
      const image = platformImage(join(shipped, "oci"), arch);
      expect(image.manifestDigest).toBe(digests.platforms[`linux/${arch}`]);
      expect(image.config).toMatchObject({ architecture: arch, os: "linux" });
      const { stdout: head } = await run("git", ["rev-parse", "HEAD"], { cwd: repoRoot });
      expect(image.config.config.Labels).toMatchObject({
        "org.opencontainers.image.source": "https://github.com/ballast-dev/ballast",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.revision": expect.stringMatching(new RegExp(`^${head.trim()}(-dirty)?$`)),
      });
      // docker load / podman load / kind load image-archive read manifest.json; its config is the index's.
      const tarball = join(shipped, `ballast-${version}-linux-${arch}.tar`);
      // The layout names the index by its tag too (skopeo's oci:<dir>:<tag>, the local nodes' tag lookup).
      const top = JSON.parse(readFileSync(join(shipped, "oci/index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
      expect(top.manifests).toEqual([expect.objectContaining({ digest: digests.index, annotations: { "org.opencontainers.image.ref.name": version } })]);
      const { stdout } = await run("tar", ["-xOf", tarball, "manifest.json"]);
      const [entry] = JSON.parse(stdout) as { Config: string; RepoTags: string[] }[];
      expect(entry!.RepoTags).toEqual([`ghcr.io/ballast-dev/ballast:${version}`]);
      const manifest = JSON.parse(readFileSync(join(shipped, "oci/blobs", ...image.manifestDigest.split(":")), "utf8")) as { config: { digest: string } };
      expect(`sha256:${entry!.Config.replace(/^sha256:/, "")}`).toBe(manifest.config.digest);
    }
  });

  it(
    "podman load reads the tarball: the image it stores has the build's config, user, entrypoint and architecture",
    async () => {
      // Debian's podman (containers/image, the library behind podman and skopeo), unpacked into the tool cache
      // with what it needs to start; its own storage (vfs) and configuration in a scratch dir, nothing of the host's.
      const { stdout: tools } = await run(join(repoRoot, "hack/image/ensure-deb-tools.sh"), [
        "podman",
        ...["podman", "conmon", "crun", "golang-github-containers-common", "libgpgme11", "libsubid4"],
      ]);
      const root = tools.trim();
      const dir = join(scratch, "podman");
      mkdirSync(dir);
      writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
      writeFileSync(
        join(dir, "containers.conf"),
        `[engine]\nconmon_path = ["${root}/usr/bin/conmon"]\nruntime = "crun"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n` +
          `[engine.runtimes]\ncrun = ["${root}/usr/bin/crun"]\n`,
      );
      writeFileSync(join(dir, "storage.conf"), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`);
      const env = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        LD_LIBRARY_PATH: join(root, "usr/lib/x86_64-linux-gnu"),
        CONTAINERS_CONF: join(dir, "containers.conf"),
        CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
      };
      const podman = (...args: string[]) => run(join(root, "usr/bin/podman"), args, { env, maxBuffer: 16 << 20 });
      // One architecture: the arm64 tarball is written by the same crane call, and each load copies ~300 MB (vfs).
      const arch = "amd64";
      const started = Date.now();
      const { stdout } = await podman("load", "--signature-policy", join(dir, "policy.json"), "-i", join(shipped, `ballast-${version}-linux-${arch}.tar`));
      console.error(`[image] podman load linux/${arch}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      expect(stdout).toContain(`Loaded image: ghcr.io/ballast-dev/ballast:${version}`);
      const image = platformImage(join(shipped, "oci"), arch);
      const manifest = JSON.parse(readFileSync(join(shipped, "oci/blobs", ...image.manifestDigest.split(":")), "utf8")) as { config: { digest: string } };
      const { stdout: inspected } = await podman("image", "inspect", manifest.config.digest.replace("sha256:", ""));
      const [loaded] = JSON.parse(inspected) as { Id: string; Architecture: string; RepoTags: string[]; Config: { User: string; Entrypoint: string[] } }[];
      // The image ID is the config's digest: the same image, not a conversion of it.
      expect(loaded).toMatchObject({
        Id: manifest.config.digest.replace("sha256:", ""),
        Architecture: arch,
        RepoTags: [`ghcr.io/ballast-dev/ballast:${version}`],
        Config: { User: "65532:65532", Entrypoint: ["ballast"] },
      });
    },
    BUILD_MS,
  );

  it(
    "gives the same digests and the same bytes when built again from the same commit",
    async () => {
      const again = join(scratch, "again");
      // Staged somewhere else: nothing of the build machine's paths may reach the image.
      const elsewhere = join(scratch, "a/deeper/staging/dir");
      mkdirSync(elsewhere, { recursive: true });
      const second = await buildImage(again, { TMPDIR: elsewhere });
      expect(second).toEqual(digests);
      for (const arch of ["amd64", "arm64"]) {
        const name = `ballast-${version}-linux-${arch}.tar`;
        expect(sha256(join(again, name))).toBe(sha256(join(shipped, name)));
      }
    },
    BUILD_MS,
  );

  it("make image-push pushes the multi-arch index with the digest the build printed", async () => {
    const { stdout: crane } = await run(join(repoRoot, "hack/image/ensure-crane.sh"));
    const registry = spawn(crane.trim(), ["registry", "serve", "--address", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      let log = "";
      registry.stderr.on("data", (c: Buffer) => (log += c.toString("utf8")));
      const deadline = Date.now() + 10_000;
      while (!/serving on port (\d+)/.test(log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const port = /serving on port (\d+)/.exec(log)?.[1];
      expect(port, `crane registry did not start: ${log}`).toBeDefined();
      const ref = `127.0.0.1:${port}/ballast:test`;
      await run(join(repoRoot, "hack/image/push.sh"), [ref, join(shipped, "oci")]);
      const { stdout: pushed } = await run(crane.trim(), ["digest", "--insecure", ref]);
      expect(pushed.trim()).toBe(digests.index);

      const missing = await run(join(repoRoot, "hack/image/push.sh"), [""]).catch((err: { code: number; stderr: string }) => err);
      expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining("make image-push IMAGE=<registry>/<repo>:<tag>") });
    } finally {
      registry.kill();
    }
  });
});

let amd64: Promise<{ image: PlatformImage; root: string }> | undefined;
/** The shipped amd64 image unpacked once into the scratch dir. */
function unpackedAmd64(): Promise<{ image: PlatformImage; root: string }> {
  amd64 ??= (async () => {
    if (process.getuid?.() !== 0) throw new Error("running the image's root filesystem needs chroot, so these tests run as root");
    const image = platformImage(join(shipped, "oci"), "amd64");
    const root = join(scratch, "rootfs");
    mkdirSync(root);
    await unpackRootfs(image, root);
    return { image, root };
  })();
  return amd64;
}

describe("the amd64 image, run as shipped (chroot into its root filesystem, its user, environment and entrypoint)", () => {
  let image: PlatformImage;
  let root: string;

  beforeAll(async () => {
    ({ image, root } = await unpackedAmd64());
  }, BUILD_MS);

  it("runs as uid 65532 with entrypoint ballast, has no shell to run, and nothing it may write but /tmp and its home", async () => {
    expect(image.config.config).toMatchObject({ User: "65532:65532", Entrypoint: ["ballast"], WorkingDir: "/app" });
    // Outside /app the only programs are node and the launcher: no shell, no env, no busybox, no scripts.
    const programs = listFiles(root).filter((f) => !f.startsWith("app/") && !/\.so(\.|$)/.test(f) && (statSync(join(root, f)).mode & 0o111) !== 0);
    expect(programs.sort()).toEqual(["usr/local/bin/ballast", "usr/local/bin/node"]);
    const writable = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isSymbolicLink())
      .map((e) => join(e.parentPath, e.name))
      .filter((path) => {
        const st = statSync(path);
        return st.uid !== 0 || st.gid !== 0 || (st.mode & 0o022) !== 0;
      })
      .map((path) => path.slice(root.length + 1));
    expect(writable.sort()).toEqual(["home/nonroot", "tmp"]);
    const { code, stdout, stderr } = await finished(runInImage(root, image.config, ["--version"]));
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout.trim()).toBe(version);
  });

  it("trains a model on a CSV with the wasm backend, then serves it and answers an OIP v2 infer request", async () => {
    const { seattleTraining, seattleTraffic } = splitWeather(loadWeather(), 300, 0);
    const dataDir = join(root, "tmp/data");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "seattle.csv"), weatherCsv(seattleTraining));

    const trained = await finished(runInImage(root, image.config, trainWeatherArgs("/tmp/data/seattle.csv", "/tmp/store")));
    expect(trained.code, trained.stderr + trained.stdout).toBe(0);
    const metadataFile = join(root, "tmp/store/weather/v1/metadata.json");
    const metadata = JSON.parse(readFileSync(metadataFile, "utf8")) as { backend: string; classes: string[] };
    expect(metadata.backend).toBe("wasm");
    // Written by the image's user, not root.
    expect(statSync(metadataFile).uid).toBe(65532);

    const server = runInImage(root, image.config, ["serve", "--store", "file:///tmp/store", "--model", "weather", "--host", "127.0.0.1", "--port", "0"]);
    const exited = finished(server);
    try {
      const port = await listeningPort(server);
      await waitUntilReady(`http://127.0.0.1:${port}/v2/health/ready`);
      const rows = seattleTraffic.slice(0, 5);
      const res = await postJson(`http://127.0.0.1:${port}/v2/models/weather/infer`, inferBody(rows, "in-image-1"));
      expect(res.status).toBe(200);
      const body = res.body as { model_name: string; model_version: string; id: string; outputs: { name: string; shape: number[]; data: string[] }[] };
      expect(body).toMatchObject({ model_name: "weather", model_version: "v1", id: "in-image-1" });
      const label = body.outputs.find((o) => o.name === "label")!;
      expect(label.shape).toEqual([5]);
      for (const predicted of label.data) expect(metadata.classes).toContain(predicted);
    } finally {
      server.kill("SIGTERM");
      await exited;
    }
  });

  it("ballast dev and ballast demo say in one line that the image does not ship their packages", async () => {
    for (const [command, args] of [
      ["dev", ["dev", "up", "--dir", "/tmp/cluster"]],
      ["demo", ["demo", "--dir", "/tmp/demo"]],
    ] as const) {
      const { code, stdout, stderr } = await finished(runInImage(root, image.config, [...args]));
      expect({ code, stdout }).toEqual({ code: 1, stdout: "" });
      expect(stderr.trim().split("\n")).toEqual([
        expect.stringMatching(new RegExp(`^ballast: \`ballast ${command}\` needs the package \\S+, a development dependency .* after \`npm ci\`$`)),
      ]);
    }
  });
});

describe("the local nodes' way of running it (ballast dev up: overlay root, volumes, chroot, the image's user)", () => {
  const repository = "ghcr.io/ballast-dev/ballast";

  /** Runs `container` of `pod` from the image `reference` names as a local node would; its exit code, log and /data. */
  async function runAsLocalNode(reference: string, pod: V1Pod, container: V1Container): Promise<{ code: number | null; log: string; data: string }> {
    // The tool cache the local nodes use: the integration suite's pods start from the same unpacked digest.
    const images = new LocalImages({ layouts: [join(shipped, "oci")], cacheDir: join(ballastCacheDir(), "images"), byTag: true });
    const started = Date.now();
    const image = await images.resolve(reference, repository);
    console.error(`[image] ${reference} resolved and unpacked (once per digest) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(image?.manifestDigest).toBe(digests.platforms["linux/amd64"]);
    const dir = mkdtempSync(join(scratch, "container-"));
    const data = join(dir, "data");
    mkdirSync(data, { mode: 0o777 });
    chmodSync(data, 0o777);
    writeFileSync(join(dir, "hosts"), "127.0.0.1\tlocalhost\n");
    const proc = imageProcess(pod, container, image!, {}, { HOSTNAME: "test-pod" });
    const script = imageStartScript(
      { rootfs: image!.rootfs, layerDir: join(dir, "rootfs"), etcHosts: join(dir, "hosts") },
      [{ hostPath: data, mountPath: "/data", readOnly: false }],
      proc,
    );
    const child = launchContainer({ dir, logFile: join(dir, "log"), script, env: proc.env });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const out = join(data, "out.json");
    return { code, log: readFileSync(join(dir, "log"), "utf8"), data: existsSync(out) ? readFileSync(out, "utf8") : "" };
  }

  const restricted: V1Pod = { spec: { containers: [], securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 } } };

  it("by digest: the entrypoint with the pod's args prints the version", async () => {
    const { code, log } = await runAsLocalNode(`${repository}@${digests.index}`, restricted, { name: "c", args: ["--version"] });
    expect({ code, log: log.trim() }).toEqual({ code: 0, log: version });
  });

  it("by tag, read-only root: the process is uid 65532 without supplementary groups, sees only the image, /proc, /dev, /etc/hosts and its volume", async () => {
    const probe = [
      'const fs = require("node:fs");',
      'const attempt = (f) => { try { f(); return "ok"; } catch (e) { return e.code; } };',
      'fs.writeFileSync("/data/out.json", JSON.stringify({',
      "  uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), cwd: process.cwd(),",
      '  writeRoot: attempt(() => fs.writeFileSync("/app/x", "")), writeTmp: attempt(() => fs.writeFileSync("/tmp/x", "")),',
      '  hosts: fs.readFileSync("/etc/hosts", "utf8"), devNull: attempt(() => fs.writeFileSync("/dev/null", "x")),',
      '  proc: fs.existsSync("/proc/self/status"), hostFiles: fs.existsSync("/work") || fs.existsSync("/root/.cache"),',
      "  home: process.env.HOME, path: process.env.PATH }));",
    ].join("\n");
    const container: V1Container = { name: "c", command: ["node", "-e", probe], securityContext: { readOnlyRootFilesystem: true } };
    const { code, log, data } = await runAsLocalNode(`${repository}:${version}`, restricted, container);
    expect({ code, log }).toEqual({ code: 0, log: "" });
    expect(JSON.parse(data)).toEqual({
      uid: 65532,
      gid: 65532,
      groups: [65532],
      cwd: "/app",
      writeRoot: "EROFS",
      writeTmp: "EROFS",
      hosts: "127.0.0.1\tlocalhost\n",
      devNull: "ok",
      proc: true,
      hostFiles: false,
      home: "/home/nonroot",
      path: "/usr/local/bin:/usr/bin:/bin",
    });
  });
});

describe("the arm64 image, run under Debian's qemu-user-static (no arm64 CPU here)", () => {
  let root = "";

  beforeAll(async () => {
    const { stdout: tools } = await run(join(repoRoot, "hack/image/ensure-deb-tools.sh"), ["qemu-user", "qemu-user-static"], {
      env: { ...process.env, KEEP: "usr/bin/qemu-aarch64-static" },
    });
    root = join(scratch, "rootfs-arm64");
    mkdirSync(root);
    const unpacking = Date.now();
    await unpackRootfs(platformImage(join(shipped, "oci"), "arm64"), root);
    console.error(`[image] linux/arm64 unpacked in ${((Date.now() - unpacking) / 1000).toFixed(1)} s`);
    // No binfmt_misc registration: the emulator runs the image's node explicitly, from inside the chroot.
    copyFileSync(join(tools.trim(), "usr/bin/qemu-aarch64-static"), join(root, "qemu-aarch64-static"));
  }, BUILD_MS);

  /** `ballast <args>` of the arm64 image, emulated, as uid 65532 in a chroot of its root filesystem. */
  const emulated = (args: string[]) =>
    spawn(
      "/usr/bin/unshare",
      [
        "--root",
        root,
        "--wd",
        "/app",
        "--setuid",
        "65532",
        "--setgid",
        "65532",
        "--",
        "/qemu-aarch64-static",
        "/usr/local/bin/node",
        "/usr/local/bin/ballast",
        ...args,
      ],
      { env: { PATH: "/usr/local/bin:/usr/bin:/bin", NODE_ENV: "production" }, stdio: ["ignore", "pipe", "pipe"] },
    );

  it("prints the version", async () => {
    const started = Date.now();
    const { code, stdout, stderr } = await finished(emulated(["--version"]));
    console.error(`[image] linux/arm64: ballast --version under qemu in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout.trim()).toBe(version);
    // It really was the arm64 build of node that ran.
    const elf = readFileSync(join(root, "usr/local/bin/node")).subarray(0, 20);
    expect(elf.readUInt16LE(18)).toBe(183); // EM_AARCH64
  });

  it(
    "serves a model the amd64 image trained and answers an OIP v2 infer request",
    async () => {
      // Trained by the amd64 image (the model files are the same on every architecture), then handed over.
      const { image: amd64Image, root: amd64Root } = await unpackedAmd64();
      const { seattleTraining, seattleTraffic } = splitWeather(loadWeather(), 300, 0);
      mkdirSync(join(amd64Root, "tmp/arm64-data"));
      writeFileSync(join(amd64Root, "tmp/arm64-data/seattle.csv"), weatherCsv(seattleTraining));
      const trained = await finished(runInImage(amd64Root, amd64Image.config, trainWeatherArgs("/tmp/arm64-data/seattle.csv", "/tmp/arm64-store")));
      expect(trained.code, trained.stderr).toBe(0);
      cpSync(join(amd64Root, "tmp/arm64-store"), join(root, "tmp/store"), { recursive: true, preserveTimestamps: true });
      await run("chown", ["-R", "65532:65532", join(root, "tmp/store")]);
      const started = Date.now();
      const server = emulated(["serve", "--store", "file:///tmp/store", "--model", "weather", "--host", "127.0.0.1", "--port", "0"]);
      const exited = finished(server);
      try {
        const port = await listeningPort(server, 240_000);
        await waitUntilReady(`http://127.0.0.1:${port}/v2/health/ready`, 120_000);
        console.error(`[image] linux/arm64: ballast serve ready under qemu in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        const res = await postJson(`http://127.0.0.1:${port}/v2/models/weather/infer`, inferBody(seattleTraffic.slice(0, 3), "arm64-1"));
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ model_name: "weather", model_version: "v1", id: "arm64-1" });
      } finally {
        server.kill("SIGTERM");
        await exited;
      }
    },
    BUILD_MS,
  );
});

describe("the Dockerfile (kept for people with Docker) describes the same image", () => {
  const stages = dockerfileStages(join(repoRoot, "Dockerfile"));
  const runtime = stages.at(-1)!;
  const deps = stages.find((s) => s.from.endsWith(" AS deps"))!;
  let image: PlatformImage;
  let root: string;

  beforeAll(async () => {
    ({ image, root } = await unpackedAmd64());
  }, BUILD_MS);

  it("same user, entrypoint, command, working directory, environment and labels", () => {
    const config = image.config.config;
    expect({ User: runtime.user, Entrypoint: runtime.entrypoint, Cmd: runtime.cmd, WorkingDir: runtime.workdir }).toEqual({
      User: config.User,
      Entrypoint: config.Entrypoint,
      Cmd: config.Cmd,
      WorkingDir: config.WorkingDir,
    });
    for (const [k, v] of Object.entries(runtime.env)) expect(config.Env).toContain(`${k}=${v}`);
    for (const [k, v] of Object.entries(runtime.labels)) {
      // ${VERSION} and ${REVISION} are build args there; here they are filled in from the checkout.
      if (v.includes("${")) expect(config.Labels?.[k], k).toBeTruthy();
      else expect(config.Labels?.[k], k).toBe(v);
    }
    // Both run on Node 24: the Dockerfile's base tag and the npm package pinned in image.lock.
    const nodeMajor = /^NODE_VERSION=(\d+)\./m.exec(readFileSync(join(repoRoot, "hack/image/config.sh"), "utf8"))?.[1];
    expect(readFileSync(join(repoRoot, "Dockerfile"), "utf8")).toContain(`ARG NODE_VERSION=${nodeMajor}\n`);
  });

  it("same files: what the Dockerfile copies into /app and /usr/local/bin/ballast, and nothing else in /app", () => {
    const copied = [...runtime.copies.keys()];
    expect(
      readdirSync(join(root, "app"))
        .map((e) => `/app/${e}`)
        .sort(),
    ).toEqual(copied.filter((d) => d.startsWith("/app/")).sort());
    // The launcher is the same file, executable.
    const launcher = runtime.copies.get("/usr/local/bin/ballast")!;
    expect(readFileSync(join(root, "usr/local/bin/ballast"))).toEqual(readFileSync(join(repoRoot, launcher)));
    expect(statSync(join(root, "usr/local/bin/ballast")).mode & 0o777).toBe(0o755);
    // package.json and the CRDs byte for byte.
    expect(readFileSync(join(root, "app/package.json"))).toEqual(readFileSync(join(repoRoot, "package.json")));
    for (const crd of readdirSync(join(repoRoot, "crds"))) expect(readFileSync(join(root, "app/crds", crd))).toEqual(readFileSync(join(repoRoot, "crds", crd)));
    // dist/: what `tsc -p tsconfig.json` makes of src/ (the Dockerfile's build stage), a .js and a .js.map per .ts.
    const sources = listFiles(join(repoRoot, "src")).filter((f) => f.endsWith(".ts"));
    expect(listFiles(join(root, "app/dist")).sort()).toEqual(sources.flatMap((f) => [f.replace(/\.ts$/, ".js"), f.replace(/\.ts$/, ".js.map")]).sort());
  });

  it("same node_modules: the lock's production packages only, pruned by the same script", () => {
    expect(deps.runs.join("\n")).toMatch(/npm ci --omit=dev --ignore-scripts [^\n]*prune-node-modules\.sh node_modules/);
    const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    const production = Object.entries(lock.packages)
      .filter(([path, p]) => path !== "" && !p.dev)
      .map(([path]) => path);
    const development = Object.entries(lock.packages)
      .filter(([, p]) => p.dev)
      .map(([path]) => path);
    for (const path of production) expect(existsSync(join(root, "app", path, "package.json")), path).toBe(true);
    for (const path of development) expect(existsSync(join(root, "app", path)), path).toBe(false);
    expect(development).toEqual(expect.arrayContaining(["node_modules/@peculiar/x509", "node_modules/reflect-metadata", "node_modules/vega-datasets"]));
    expect(listFiles(join(root, "app/node_modules")).filter((f) => /\.(map|d\.ts|d\.mts|d\.cts)$/.test(f))).toEqual([]);
  });
});

/** Paths of the regular files under `dir`, relative to it. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** The port from `ballast serve`'s "listening" log line. */
async function listeningPort(server: ReturnType<typeof runInImage>, timeoutMs = 60_000): Promise<number> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ballast serve in the image did not listen within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString("utf8");
      const line = out.split("\n").find((l) => l.includes('"event":"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    };
    server.stdout!.on("data", onData);
    server.stderr!.on("data", onData);
    server.once("exit", (code) => reject(new Error(`ballast serve exited with ${code}:\n${out}`)));
  });
}
