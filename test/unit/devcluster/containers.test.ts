import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ballastArguments, isBallastImage, startScript } from "../../../src/devcluster/container-process.js";
import { chooseLoopbackBlocks, LoopbackIPAllocator, loopbackOctetsInUse } from "../../../src/devcluster/ip-allocator.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containerEnv, expandVars, fieldRefValue } from "../../../src/devcluster/pod-env.js";
import { PortAllocator } from "../../../src/devcluster/ports.js";
import type { PodApi } from "../../../src/devcluster/pod-api.js";

const repo = "ghcr.io/ballast-dev/ballast";

describe("which images the local nodes run", () => {
  it("accepts Ballast's image at any tag or digest and nothing else", () => {
    expect(isBallastImage(repo, repo)).toBe(true);
    expect(isBallastImage(`${repo}:0.1.0`, repo)).toBe(true);
    expect(isBallastImage(`${repo}@sha256:abc`, repo)).toBe(true);
    expect(isBallastImage(`${repo}-evil:1`, repo)).toBe(false);
    expect(isBallastImage("nginx:1.27", repo)).toBe(false);
    expect(isBallastImage(undefined, repo)).toBe(false);
  });
  it("treats args as the entrypoint's arguments, and a command only when it runs ballast", () => {
    expect(ballastArguments({ name: "c", args: ["serve", "--port", "$(PORT)"] }, { PORT: "9000" })).toEqual(["serve", "--port", "9000"]);
    expect(ballastArguments({ name: "c", command: ["ballast", "train"], args: ["--epochs", "3"] }, {})).toEqual(["train", "--epochs", "3"]);
    expect(ballastArguments({ name: "c", command: ["/usr/local/bin/ballast", "serve"] }, {})).toEqual(["serve"]);
    expect(() => ballastArguments({ name: "c", command: ["python", "train.py"] }, {})).toThrow(/entrypoint `ballast`/);
  });
});

describe("container start script", () => {
  it("stages every source before mounting, mounts parents before children, remounts read-only, execs with quoted arguments", () => {
    const script = startScript(
      [
        { hostPath: "/tmp/cluster/token", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
        { hostPath: "/tmp/cluster/scratch", mountPath: "/tmp", readOnly: false },
      ],
      "/tmp/cluster/work",
      ["/opt/node/bin/node", "/tmp/ballast/dist/cli/main.js", "it's"],
      ["/opt/node", "/tmp/ballast"],
    );
    const lines = script.split("\n");
    const at = (line: string) => {
      const i = lines.indexOf(line);
      expect(i, line).toBeGreaterThan(-1);
      return i;
    };
    // Both sources are bound into staging before /tmp (which holds them) is mounted over.
    const lastStage = Math.max(at("mount --bind '/tmp/cluster/token' /.ballast-volumes/1"), at("mount --bind '/tmp/cluster/scratch' /.ballast-volumes/0"));
    expect(lastStage).toBeLessThan(at("mount --bind /.ballast-volumes/0 '/tmp'"));
    expect(at("mount --bind /.ballast-volumes/0 '/tmp'")).toBeLessThan(at("mount --bind /.ballast-volumes/1 '/var/run/secrets/kubernetes.io/serviceaccount'"));
    expect(script).toContain("mount -o remount,bind,ro '/var/run/secrets/kubernetes.io/serviceaccount'");
    expect(script).not.toContain("mount -o remount,bind,ro '/tmp'");
    // The working directory is entered before anything is mounted; the program runs from staged copies.
    expect(at("cd '/tmp/cluster/work'")).toBeLessThan(at("mount --bind /.ballast-volumes/0 '/tmp'"));
    expect(at("mount --bind '/tmp/ballast' /.ballast-volumes/pin1")).toBeLessThan(at("mount --bind /.ballast-volumes/0 '/tmp'"));
    expect(lines.filter(Boolean).at(-1)).toBe(`exec '/.ballast-volumes/pin0/bin/node' '/.ballast-volumes/pin1/dist/cli/main.js' 'it'\\''s'`);
    expect(() => startScript([{ hostPath: "/h", mountPath: "/", readOnly: false }], "/w", ["x"])).toThrow(/absolute path other than \//);
    expect(() => startScript([{ hostPath: "/h", mountPath: "data", readOnly: false }], "/w", ["x"])).toThrow();
  });
  it("runs the process directly when there is nothing to mount", () => {
    expect(startScript([], "/w", ["node", "x"])).not.toContain("mount");
  });
});

describe("container environment", () => {
  const pod: V1Pod = {
    metadata: { name: "p1", namespace: "ns", uid: "u1", labels: { app: "x" } },
    spec: { nodeName: "ballast-cpu-0", serviceAccountName: "sa", containers: [] },
  };
  const api: PodApi = {
    readConfigMap: async (_ns, name) => (name === "cfg" ? { data: { MODE: "fast", LEVEL: "3" } } : undefined),
    readSecret: async (_ns, name) => (name === "sec" ? { data: { TOKEN: Buffer.from("s3cret").toString("base64") } } : undefined),
    requestToken: async () => "token",
  };
  it("resolves downward-API fields", () => {
    expect(fieldRefValue(pod, "metadata.name", "127.244.0.1", "127.0.1.1")).toBe("p1");
    expect(fieldRefValue(pod, "status.podIP", "127.244.0.1", "127.0.1.1")).toBe("127.244.0.1");
    expect(fieldRefValue(pod, "metadata.labels['app']", undefined, "h")).toBe("x");
    expect(() => fieldRefValue(pod, "spec.bogus", undefined, "h")).toThrow(/unsupported fieldRef/);
  });
  it("gives an Indexed Job's pod its JOB_COMPLETION_INDEX from the annotation, usable in args", async () => {
    const indexed: V1Pod = { ...pod, metadata: { ...pod.metadata, annotations: { "batch.kubernetes.io/job-completion-index": "1" } } };
    // The env var exactly as the Job controller adds it to each container.
    const container = {
      name: "c",
      args: ["dev", "job", "--termination-message", "$(JOB_COMPLETION_INDEX)"],
      env: [{ name: "JOB_COMPLETION_INDEX", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } }],
    };
    const env = await containerEnv(indexed, container, undefined, "h", api);
    expect(env.JOB_COMPLETION_INDEX).toBe("1");
    expect(ballastArguments(container, env)).toEqual(["dev", "job", "--termination-message", "1"]);
  });
  it("builds env from envFrom, values, fieldRefs and key refs, expanding $(VAR)", async () => {
    const env = await containerEnv(
      pod,
      {
        name: "c",
        envFrom: [{ configMapRef: { name: "cfg" }, prefix: "CFG_" }],
        env: [
          { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "URL", value: "http://$(POD_IP):8080/$$(LITERAL)" },
          { name: "TOKEN", valueFrom: { secretKeyRef: { name: "sec", key: "TOKEN" } } },
          { name: "OPT", valueFrom: { configMapKeyRef: { name: "missing", key: "k", optional: true } } },
        ],
      },
      "127.244.0.9",
      "127.0.1.1",
      api,
    );
    expect(env).toEqual({ CFG_MODE: "fast", CFG_LEVEL: "3", POD_IP: "127.244.0.9", URL: "http://127.244.0.9:8080/$(LITERAL)", TOKEN: "s3cret" });
  });
  it("fails with CreateContainerConfigError naming a missing required key", async () => {
    await expect(
      containerEnv(pod, { name: "c", env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "NOPE" } } }] }, undefined, "h", api),
    ).rejects.toMatchObject({
      reason: "CreateContainerConfigError",
      message: "couldn't find key NOPE in ConfigMap ns/cfg",
    });
  });
  it("leaves unknown $(VARS) alone", () => {
    expect(expandVars("$(A)-$(B)", { A: "1" })).toBe("1-$(B)");
  });
});

describe("allocation", () => {
  it("gives each pod its own loopback IP, stable per pod, reusable after release", () => {
    const ips = new LoopbackIPAllocator(244);
    const a = ips.allocate("a");
    const b = ips.allocate("b");
    expect(a).not.toBe(b);
    expect(a).toMatch(/^127\.244\.\d+\.\d+$/);
    expect(ips.allocate("a")).toBe(a);
    ips.release("a");
    expect(ips.allocate("c")).not.toBe(b);
  });
  it("picks pod and Service blocks that no listening socket on this machine uses", () => {
    const file = join(mkdtempSync(join(tmpdir(), "proc-")), "tcp");
    writeFileSync(
      file,
      [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1",
        "   1: 0100F47F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2",
      ].join("\n"),
    );
    const used = loopbackOctetsInUse(file);
    expect([...used].sort()).toEqual([0, 244]);
    const all = new Set(Array.from({ length: 155 }, (_, i) => i + 100));
    all.delete(150);
    all.delete(151);
    const { podOctet, serviceOctet } = chooseLoopbackBlocks(all);
    expect(new Set([podOctet, serviceOctet])).toEqual(new Set([150, 151]));
    all.add(150);
    expect(() => chooseLoopbackBlocks(all)).toThrow(/no free \/16 block/);
  });
  it("never hands out the same port twice", async () => {
    const ports = new PortAllocator();
    const got = await Promise.all(Array.from({ length: 20 }, () => ports.allocate()));
    expect(new Set(got).size).toBe(20);
  });
});
