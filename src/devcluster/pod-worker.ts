// One pod on a local node, from binding to deletion: images, volumes, init containers, containers with
// restarts and probes, status through the pod's status subresource, graceful termination.
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { KubeApiError, PatchType, resourcePath, type KubeClient } from "../kube/client.js";
import { PODS } from "../kube/resources.js";
import { ballastArguments, canUseMountNamespace, CreateContainerError, isBallastImage, launchContainer, type Mount } from "./container-process.js";
import { checkMountPaths, imageProcess, imageStartScript } from "./image-container.js";
import type { LocalImage, LocalImages } from "./local-images.js";
import { LogRequestError } from "./container-logs.js";
import type { PodApi } from "./pod-api.js";
import { containerDir, podDir } from "./pod-dirs.js";
import { ContainerConfigError, containerEnv } from "./pod-env.js";
import { computePodStatus, willRestart, type ContainerRecord, type PodRuntimeView, type RuntimeState } from "./pod-status.js";
import { VolumeError, prepareVolumes } from "./pod-volumes.js";
import { ProbeTracker, runProbe } from "./probes.js";
import { capForPod, readTerminationMessage, stageTerminationMessageFile } from "./termination-message.js";
import type { LocalNodeSpec } from "./nodes.js";

export interface NodeContext {
  clusterDir: string;
  node: LocalNodeSpec;
  client: KubeClient;
  api: PodApi;
  imageRepository: string;
  /** argv prefix that runs the `ballast` CLI (node + script). */
  ballastCommand: string[];
  /** Directories holding that program (Node's install, Ballast's checkout), kept reachable under volume mounts. */
  programDirs: string[];
  /** Local images whose root filesystems containers run from; a container whose image none holds runs the CLI above. */
  images: LocalImages | undefined;
  apiServerHost: string;
  apiServerPort: number;
  crashLoopBackoffMs: number;
  allocateIP(podUID: string): string;
  releaseIP(podUID: string): void;
  event(pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): void;
  /** About to write this status (the Service proxy routes by it before the API server shows it). */
  statusWriting(pod: V1Pod): void;
  statusNotWritten(pod: V1Pod): void;
  log: Logger;
}

type Terminated = Extract<RuntimeState, { kind: "terminated" }>;
/** How the kubelet words the image pull failures when `kubectl logs` asks for a container that never started. */
const WAITING_TO_START: Record<string, string> = { ErrImagePull: "image can't be pulled", ImagePullBackOff: "trying and failing to pull image" };
const MAX_BACKOFF_MS = 300_000;

class ContainerRunner {
  readonly record: ContainerRecord;
  private child: ChildProcess | undefined;
  private exited: Promise<Terminated> | undefined;
  private stopping = false;
  private probesAbort = new AbortController();
  /** This instance's log file and the one before it: the kubelet keeps one previous instance's log per container. */
  private currentLog: string | undefined;
  private previousLog: string | undefined;

  constructor(
    readonly spec: V1Container,
    private readonly pod: PodWorker,
  ) {
    this.record = {
      name: spec.name,
      image: spec.image ?? "",
      state: { kind: "waiting", reason: "ContainerCreating" },
      restartCount: 0,
      ready: false,
      started: false,
    };
  }

  get running(): boolean {
    return this.record.state.kind === "running";
  }

  /** Starts the process; resolves once it exits (with its terminated state). */
  async start(): Promise<Terminated> {
    const ctx = this.pod.ctx;
    const dir = containerDir(this.pod.dir, this.spec.name);
    const env = await containerEnv(this.pod.pod, this.spec, this.pod.podIP, ctx.node.address, ctx.api);
    const image = await ctx.images?.resolve(this.spec.image!, ctx.imageRepository);
    const mounts: Mount[] = (this.spec.volumeMounts ?? []).map((m) => {
      const host = this.pod.volumes.get(m.name);
      if (!host) throw new CreateContainerError(`volumeMount "${m.name}" names no volume of the pod`);
      return { hostPath: m.subPath ? join(host, m.subPath) : host, mountPath: m.mountPath, readOnly: m.readOnly ?? false };
    });
    // A missing source is a directory to create (emptyDir, a claim's subPath); an existing file stays a file.
    for (const m of mounts) if (!existsSync(m.hostPath)) mkdirSync(m.hostPath, { recursive: true });
    // A fresh file per run, bind-mounted at terminationMessagePath for the process to write (needs the mount namespace).
    let messageFile: string | undefined;
    if (this.spec.terminationMessagePath && canUseMountNamespace) {
      mkdirSync(dir, { recursive: true });
      messageFile = stageTerminationMessageFile(dir, this.record.restartCount);
      mounts.push({ hostPath: messageFile, mountPath: this.spec.terminationMessagePath, readOnly: false });
    }
    const runtimeEnv: Record<string, string> = {
      HOSTNAME: this.pod.pod.metadata!.name!,
      // In-cluster clients find the API server the way they do in a real pod.
      KUBERNETES_SERVICE_HOST: ctx.apiServerHost,
      KUBERNETES_SERVICE_PORT: String(ctx.apiServerPort),
      KUBERNETES_SERVICE_PORT_HTTPS: String(ctx.apiServerPort),
    };
    const startedAt = new Date();
    const logFile = join(dir, `${this.record.restartCount}.log`);
    const child = image ? this.launchFromImage(image, dir, logFile, env, runtimeEnv, mounts) : this.launchFromCheckout(dir, logFile, env, runtimeEnv, mounts);
    this.child = child;
    if (this.previousLog) rmSync(this.previousLog, { force: true });
    this.previousLog = this.currentLog;
    this.currentLog = logFile;
    this.record.containerID = `ballast-local://${child.pid}`;
    this.record.state = { kind: "running", startedAt };
    this.record.started = !this.spec.startupProbe;
    this.record.ready = !this.spec.readinessProbe && this.record.started;
    this.pod.changed();
    this.exited = new Promise<Terminated>((resolve) => {
      child.once("exit", (code, signal) => {
        const finishedAt = new Date();
        const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : 15);
        resolve({ kind: "terminated", exitCode, ...(signal ? { signal } : {}), reason: exitCode === 0 ? "Completed" : "Error", startedAt, finishedAt });
      });
      child.once("error", (err) => {
        const now = new Date();
        resolve({ kind: "terminated", exitCode: 128, reason: "StartError", message: err.message, startedAt: now, finishedAt: now });
      });
    });
    this.probesAbort = new AbortController();
    void this.runProbes(this.probesAbort.signal);
    const terminated = this.withMessage(await this.exited, messageFile, logFile);
    this.probesAbort.abort();
    rmSync(join(dir, "pid"), { force: true });
    this.child = undefined;
    this.record.state = terminated;
    this.record.ready = false;
    this.pod.changed();
    return terminated;
  }

  /** The development fast path: the checkout's CLI on the host's files, the volumes bound in a mount namespace. */
  private launchFromCheckout(dir: string, logFile: string, env: Record<string, string>, runtimeEnv: Record<string, string>, mounts: Mount[]): ChildProcess {
    const ctx = this.pod.ctx;
    delete this.record.imageID;
    ctx.log.info({ pod: this.pod.key, container: this.spec.name, image: this.spec.image, mode: "checkout" }, "starting container with the checkout's CLI");
    return launchContainer({
      dir,
      logFile,
      mounts,
      workingDir: this.spec.workingDir || join(dir, "work"),
      argv: [...ctx.ballastCommand, ...ballastArguments(this.spec, env)],
      pins: ctx.programDirs,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...runtimeEnv, ...env },
    });
  }

  /** The image users get: its root filesystem (overlay), user, entrypoint and environment; the volumes inside it. */
  private launchFromImage(
    image: LocalImage,
    dir: string,
    logFile: string,
    env: Record<string, string>,
    runtimeEnv: Record<string, string>,
    mounts: Mount[],
  ): ChildProcess {
    const proc = imageProcess(this.pod.pod, this.spec, image, env, runtimeEnv);
    checkMountPaths(image.rootfs, mounts);
    // A restarted container starts from the image again, as a runtime's new container does.
    const layerDir = join(dir, "rootfs");
    rmSync(layerDir, { recursive: true, force: true });
    const script = imageStartScript({ rootfs: image.rootfs, layerDir, etcHosts: this.pod.etcHosts() }, mounts, proc);
    this.pod.ctx.log.info(
      { pod: this.pod.key, container: this.spec.name, image: this.spec.image, mode: "image", manifest: image.manifestDigest, layout: image.layout },
      "starting container from the image's root filesystem",
    );
    const child = launchContainer({ dir, logFile, script, env: proc.env });
    this.record.imageID = `${this.pod.ctx.imageRepository}@${image.manifestDigest}`;
    this.pod.ctx.event(
      this.pod.pod,
      "Normal",
      "Pulled",
      `Container image "${this.spec.image}" already present on machine: running its root filesystem (${image.config.os}/${image.config.architecture} ${image.manifestDigest}, uid ${proc.uid}${proc.readOnlyRootFilesystem ? ", read-only" : ""})`,
    );
    return child;
  }

  /**
   * The log file `kubectl logs` reads (with `--previous`, the instance before), and while it is still being
   * written, a promise of its end. Which instance is which follows the kubelet: during a crash-loop back-off the
   * instance that just exited is both the current and the previous one.
   */
  logSource(previous: boolean): { file: string; running?: Promise<unknown> } {
    const pod = this.pod.pod.metadata!.name!;
    const name = this.spec.name;
    if (previous) {
      const file = this.record.state.kind === "waiting" ? this.currentLog : this.previousLog;
      if (!this.record.lastTerminated || !file) throw new LogRequestError(400, `previous terminated container "${name}" in pod "${pod}" not found`);
      return { file };
    }
    if (!this.currentLog) {
      const reason = this.record.state.kind === "waiting" ? this.record.state.reason : "ContainerCreating";
      throw new LogRequestError(400, `container "${name}" in pod "${pod}" is waiting to start: ${WAITING_TO_START[reason] ?? reason}`);
    }
    return this.running && this.exited ? { file: this.currentLog, running: this.exited } : { file: this.currentLog };
  }

  /** The kubelet's terminated.message: the runtime's reason for a failed start, then what the container left. */
  private withMessage(terminated: Terminated, messageFile: string | undefined, logFile: string): Terminated {
    // A process that never started has no file and no logs to fall back to.
    const left = terminated.reason === "StartError" ? "" : readTerminationMessage(this.spec, messageFile, logFile, terminated.exitCode);
    const message = [terminated.message, left].filter(Boolean).join(": ");
    const spec = this.pod.pod.spec;
    const containersInPod = (spec?.containers.length ?? 0) + (spec?.initContainers?.length ?? 0);
    return message ? { ...terminated, message: capForPod(message, containersInPod) } : terminated;
  }

  /** Runs the container until the pod stops it or the restart policy says it is done. */
  async supervise(isInit: boolean): Promise<Terminated | undefined> {
    const policy = isInit && this.pod.pod.spec?.restartPolicy === "Always" ? "OnFailure" : this.pod.pod.spec?.restartPolicy;
    let backoff = this.pod.ctx.crashLoopBackoffMs;
    while (!this.pod.terminating) {
      let result: Terminated;
      try {
        result = await this.start();
      } catch (err) {
        const reason = err instanceof ContainerConfigError || err instanceof CreateContainerError ? err.reason : "CreateContainerError";
        this.record.state = { kind: "waiting", reason, message: (err as Error).message };
        this.pod.changed();
        this.pod.ctx.event(this.pod.pod, "Warning", "Failed", `Error: ${(err as Error).message}`);
        await this.pod.sleepUnlessTerminating(2_000);
        continue;
      }
      if (this.pod.terminating || this.stopping) return result;
      if (!willRestart(policy, result.exitCode)) return result;
      const ranLong = result.finishedAt.getTime() - result.startedAt.getTime() > 10 * 60_000;
      if (ranLong) backoff = this.pod.ctx.crashLoopBackoffMs;
      this.record.lastTerminated = result;
      this.record.state = {
        kind: "waiting",
        reason: "CrashLoopBackOff",
        message: `back-off ${Math.round(backoff / 1000)}s restarting failed container=${this.spec.name} pod=${this.pod.key}`,
      };
      this.pod.ctx.event(this.pod.pod, "Warning", "BackOff", `Back-off restarting failed container ${this.spec.name} in pod ${this.pod.key}`);
      this.pod.changed();
      await this.pod.sleepUnlessTerminating(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      this.record.restartCount++;
    }
    return undefined;
  }

  private async runProbes(signal: AbortSignal): Promise<void> {
    const spec = this.spec;
    const podIP = this.pod.podIP!;
    const startup = spec.startupProbe ? new ProbeTracker(spec.startupProbe, false) : undefined;
    const readiness = spec.readinessProbe ? new ProbeTracker(spec.readinessProbe, false) : undefined;
    const liveness = spec.livenessProbe ? new ProbeTracker(spec.livenessProbe, true) : undefined;
    const started = Date.now();
    const due = (p: { initialDelaySeconds?: number; periodSeconds?: number }, last: number) =>
      Date.now() - started >= (p.initialDelaySeconds ?? 0) * 1000 && Date.now() - last >= (p.periodSeconds ?? 10) * 1000;
    let lastStartup = 0;
    let lastReadiness = 0;
    let lastLiveness = 0;
    while (!signal.aborted && this.running) {
      if (startup && !startup.passing && spec.startupProbe && due(spec.startupProbe, lastStartup)) {
        lastStartup = Date.now();
        const r = await runProbe(spec.startupProbe, spec, podIP);
        startup.record(r);
        if (startup.passing) {
          this.record.started = true;
          if (!readiness) this.record.ready = true;
          this.pod.changed();
        }
      }
      const afterStartup = !startup || startup.passing;
      if (afterStartup && readiness && spec.readinessProbe && due(spec.readinessProbe, lastReadiness)) {
        lastReadiness = Date.now();
        const r = await runProbe(spec.readinessProbe, spec, podIP);
        if (readiness.record(r) || this.record.ready !== readiness.passing) {
          this.record.ready = readiness.passing && this.running;
          if (!r.ok && !readiness.passing) this.pod.ctx.event(this.pod.pod, "Warning", "Unhealthy", `Readiness probe failed: ${r.message}`);
          this.pod.changed();
        }
      }
      if (afterStartup && liveness && spec.livenessProbe && due(spec.livenessProbe, lastLiveness)) {
        lastLiveness = Date.now();
        const r = await runProbe(spec.livenessProbe, spec, podIP);
        if (liveness.record(r) && !liveness.passing) {
          this.pod.ctx.event(this.pod.pod, "Warning", "Unhealthy", `Liveness probe failed: ${r.ok ? "" : r.message}`);
          this.pod.ctx.event(this.pod.pod, "Normal", "Killing", `Container ${spec.name} failed liveness probe, will be restarted`);
          await this.kill((this.pod.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
          return;
        }
      }
      await sleep(100, undefined, { signal }).catch(() => {});
    }
  }

  /** SIGTERM to the container's process group, SIGKILL after graceMs. */
  async kill(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.exited) return;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        child.kill(sig);
      }
    };
    signalGroup("SIGTERM");
    const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await this.kill(graceMs);
  }
}

export class PodWorker {
  podIP: string | undefined;
  volumes = new Map<string, string>();
  terminating = false;
  readonly dir: string;
  readonly key: string;
  private readonly started = new Date();
  private sandboxReady = false;
  private initRunners: ContainerRunner[];
  private runners: ContainerRunner[];
  private dirty = false;
  private pushing: Promise<void> | undefined;
  private wake = new AbortController();
  private done: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    public pod: V1Pod,
    readonly ctx: NodeContext,
  ) {
    const m = pod.metadata!;
    this.key = `${m.namespace}/${m.name}`;
    this.dir = podDir(ctx.clusterDir, m.namespace!, m.name!, m.uid!);
    this.initRunners = (pod.spec?.initContainers ?? []).map((c) => new ContainerRunner(c, this));
    this.runners = (pod.spec?.containers ?? []).map((c) => new ContainerRunner(c, this));
  }

  /** The log of a container or init container of this pod, for the kubelet API. */
  logSource(container: string, previous: boolean): { file: string; running?: Promise<unknown> } {
    const runner = [...this.initRunners, ...this.runners].find((r) => r.spec.name === container);
    if (!runner) throw new LogRequestError(404, `container "${container}" not found in pod "${this.pod.metadata!.name}"`);
    return runner.logSource(previous);
  }

  /** A newer version of the pod from the watch; deletion starts graceful termination. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.terminating) void this.stopAll(this.gracePeriodMs());
  }

  private gracePeriodMs(): number {
    return (this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
  }

  start(): Promise<void> {
    this.done ??= this.run().catch((err: unknown) => this.ctx.log.error({ pod: this.key, err }, "pod worker failed"));
    return this.done;
  }

  changed(): void {
    this.dirty = true;
    this.pushing ??= this.pushStatus().finally(() => (this.pushing = undefined));
  }

  async sleepUnlessTerminating(ms: number): Promise<void> {
    if (this.terminating) return;
    await sleep(ms, undefined, { signal: this.wake.signal }).catch(() => {});
  }

  private view(): PodRuntimeView {
    return {
      ...(this.podIP ? { podIP: this.podIP } : {}),
      hostIP: this.ctx.node.address,
      startTime: this.started,
      sandboxReady: this.sandboxReady,
      initContainers: this.initRunners.map((r) => r.record),
      containers: this.runners.map((r) => r.record),
    };
  }

  private async run(): Promise<void> {
    const phase = this.pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      // Finished before this node agent started: nothing to run, only the deletion to finish.
      await this.waitForTermination();
      await this.finish();
      return;
    }
    const bad = [...this.initRunners, ...this.runners].filter((r) => !isBallastImage(r.spec.image, this.ctx.imageRepository));
    if (bad.length > 0) {
      await this.refuseImages(bad);
      await this.waitForTermination();
      await this.finish();
      return;
    }
    await this.prepareSandbox();
    if (!this.terminating) await this.runContainers();
    await this.waitForTermination();
    await this.finish();
  }

  /** Like an image pull that fails: the pod stays Pending with ErrImagePull, then ImagePullBackOff. */
  private async refuseImages(bad: ContainerRunner[]): Promise<void> {
    for (const r of bad) {
      const message = `image "${r.spec.image}" cannot run on Ballast's local nodes: they run only ${this.ctx.imageRepository} (any tag) as local processes`;
      r.record.state = { kind: "waiting", reason: "ErrImagePull", message };
      this.ctx.event(this.pod, "Warning", "Failed", `Failed to pull image "${r.spec.image}": ${message}`);
    }
    this.changed();
    await this.sleepUnlessTerminating(5_000);
    for (const r of bad) if (r.record.state.kind === "waiting") r.record.state = { ...r.record.state, reason: "ImagePullBackOff" };
    this.changed();
  }

  private async prepareSandbox(): Promise<void> {
    this.podIP = this.ctx.allocateIP(this.pod.metadata!.uid!);
    mkdirSync(this.dir, { recursive: true });
    while (!this.terminating) {
      try {
        this.volumes = await prepareVolumes(this.pod, this.dir, this.ctx.clusterDir, this.ctx.api, this.ctx.node.address, this.podIP);
        break;
      } catch (err) {
        const message = (err as Error).message;
        this.ctx.event(this.pod, "Warning", err instanceof VolumeError ? "FailedMount" : "FailedCreatePodSandBox", message);
        this.changed();
        await this.sleepUnlessTerminating(2_000);
      }
    }
    this.sandboxReady = true;
    this.changed();
  }

  private async runContainers(): Promise<void> {
    for (const init of this.initRunners) {
      const result = await init.supervise(true);
      if (!result || result.exitCode !== 0 || this.terminating) return;
    }
    for (const r of this.runners) this.ctx.event(this.pod, "Normal", "Started", `Started container ${r.spec.name}`);
    await Promise.all(this.runners.map((r) => r.supervise(false)));
  }

  private async waitForTermination(): Promise<void> {
    while (!this.terminating) await sleep(60_000, undefined, { signal: this.wake.signal }).catch(() => {});
  }

  /** Graceful termination: SIGTERM, SIGKILL after the grace period, final status, then remove the pod object. */
  private async finish(): Promise<void> {
    await this.stopAll(this.gracePeriodMs());
    while (this.pushing) await this.pushing;
    const m = this.pod.metadata!;
    try {
      await this.ctx.client.delete(resourcePath(PODS, m.namespace, m.name), { body: { gracePeriodSeconds: 0, preconditions: { uid: m.uid! } } });
    } catch (err) {
      if (!(err instanceof KubeApiError && (err.notFound || err.conflict))) this.ctx.log.warn({ pod: this.key, err: String(err) }, "final pod delete failed");
    }
    this.cleanup();
  }

  /** The pod object is gone (or the agent is stopping): stop processes, free the IP, remove its files. */
  stopAll(graceMs: number): Promise<void> {
    if (!this.stopped) {
      this.terminating = true;
      this.wake.abort();
      const live = [...this.initRunners, ...this.runners].filter((r) => r.running);
      if (live.length > 0) this.ctx.event(this.pod, "Normal", "Killing", `Stopping containers ${live.map((r) => r.spec.name).join(", ")}`);
      this.stopped = Promise.all([...this.initRunners, ...this.runners].map((r) => r.stop(graceMs))).then(() => {});
    }
    return this.stopped;
  }

  /** The pod's /etc/hosts, as the kubelet writes it (localhost, and the pod's name on its IP). */
  etcHosts(): string {
    const file = join(this.dir, "etc-hosts");
    if (!existsSync(file)) {
      const lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        `${this.podIP}\t${this.pod.metadata!.name}`,
      ];
      writeFileSync(file, `${lines.join("\n")}\n`, { mode: 0o644 });
    }
    return file;
  }

  cleanup(): void {
    this.ctx.releaseIP(this.pod.metadata!.uid!);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async pushStatus(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const m = this.pod.metadata!;
      const status = computePodStatus(this.pod, this.view(), new Date());
      const next = { ...this.pod, status };
      this.ctx.statusWriting(next);
      try {
        const updated = await this.ctx.client.patch<V1Pod>(
          resourcePath(PODS, m.namespace, m.name, "status"),
          { metadata: { uid: m.uid }, status },
          PatchType.merge,
        );
        // The watch keeps metadata current; take the status as the API server now has it (PodScheduled etc.).
        this.pod = { ...this.pod, status: updated.status };
      } catch (err) {
        this.ctx.statusNotWritten(next);
        if (err instanceof KubeApiError && err.notFound) return;
        this.ctx.log.warn({ pod: this.key, err: String(err) }, "pod status update failed; retrying");
        this.dirty = true;
        await sleep(500);
      }
    }
  }
}
