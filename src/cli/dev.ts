// `ballast dev`: a real local Kubernetes cluster without Docker (see docs/local-cluster.md).
import { Command, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ballastCacheDir } from "../devcluster/binaries.js";
import { DEFAULT_IMAGE_REPOSITORY } from "../devcluster/nodes.js";
import { loadDevOnlyModule } from "./dev-only-modules.js";

// The cluster code (Kubernetes client, x509) loads inside each action: `ballast dev echo` in a pod starts in
// a fraction of the time, which matters for its probes on a loaded machine.
const cluster = () => loadDevOnlyModule("dev", () => import("../devcluster/cluster.js"));

const defaultDir = () => join(ballastCacheDir(), "dev-cluster");

function count(name: string, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 0 to ${max}`);
    return n;
  };
}

export function registerDev(program: Command): void {
  const dev = program
    .command("dev")
    .description("run a real local Kubernetes cluster without Docker (etcd, kube-apiserver, controllers, scheduler, local nodes)");

  const dirOption = () => new Option("--dir <dir>", "cluster directory (state, logs, kubeconfig)").default(defaultDir(), "~/.cache/ballast/dev-cluster");

  dev
    .command("up")
    .description("start the cluster and print `export KUBECONFIG=...`; returns once the API is healthy and the nodes are Ready")
    .addOption(dirOption())
    .option("--nodes <n>", "CPU nodes", count("--nodes", 20), 1)
    .option(
      "--gpu-nodes <n>",
      "GPU nodes (nvidia.com/gpu capacity, label ballast.dev/accelerator=nvidia-gpu, taint nvidia.com/gpu=present:NoSchedule)",
      count("--gpu-nodes", 20),
      1,
    )
    .option("--image-repository <repo>", "the image the local nodes run as local processes (any tag)", DEFAULT_IMAGE_REPOSITORY)
    .option("--prometheus", "also run Prometheus: scrapes the operator and serving pods as the shipped monitors do, loads the shipped alert rules")
    .option("--s3", "also run an S3 server (SeaweedFS) with the bucket ballast-models, and print the endpoint and keys to use (for s3:// model stores)")
    .option("--registry", "also run an OCI registry (CNCF distribution) on loopback, and print its address (plain http)")
    .option(
      "--image-layout <dir>",
      "OCI layout whose images the local nodes run from their root filesystem, by tag or digest (default: the checkout's dist/image/oci, written by `make image`)",
    )
    .option(
      "--checkout-cli",
      "run containers whose image is named by tag with the checkout's CLI instead (the development fast path: no `make image` after a change); a reference by digest still runs the image",
    )
    .action(
      async (flags: {
        dir: string;
        nodes: number;
        gpuNodes: number;
        imageRepository: string;
        prometheus?: boolean;
        s3?: boolean;
        registry?: boolean;
        imageLayout?: string;
        checkoutCli?: boolean;
      }) => {
        if (flags.nodes + flags.gpuNodes === 0) throw new InvalidArgumentError("at least one node is needed (--nodes or --gpu-nodes)");
        const abort = new AbortController();
        const onSignal = () => abort.abort(new Error("interrupted"));
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        const started = Date.now();
        const { clusterUp, checkoutImageLayout } = await cluster();
        const state = await clusterUp({
          dir: flags.dir,
          cpuNodes: flags.nodes,
          gpuNodes: flags.gpuNodes,
          imageRepository: flags.imageRepository,
          prometheus: flags.prometheus ?? false,
          s3: flags.s3 ?? false,
          registry: flags.registry ?? false,
          images: { layouts: [flags.imageLayout ?? checkoutImageLayout()], byTag: !flags.checkoutCli },
          log: (line) => console.error(`dev up: ${line}`),
          signal: abort.signal,
        });
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        console.error(`dev up: ready in ${((Date.now() - started) / 1000).toFixed(1)} s; nodes ${state.nodes.join(", ")}; logs in ${join(state.dir, "logs")}`);
        if (state.kubectl) console.error(`dev up: kubectl: ${state.kubectl}`);
        if (state.prometheusUrl) console.error(`dev up: prometheus: ${state.prometheusUrl}`);
        if (state.s3)
          console.error(
            `dev up: s3: ${state.s3.endpoint}, bucket ${state.s3.bucket} (storageUri s3://${state.s3.bucket}/<prefix>); its keys are in ${state.s3.envFile} ` +
              "and in the export lines below; for spec.model.s3.credentialsSecretRef: kubectl create secret generic <name> " +
              '--from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"',
          );
        if (state.registry) console.error(`dev up: registry: ${state.registry} (plain http: crane push --insecure, helm push --plain-http)`);
        console.log(`export KUBECONFIG=${state.kubeconfig}`);
        // On stdout with the kubeconfig line, for `eval "$(ballast dev up --s3)"`: the user's own shell, not a log.
        if (state.s3) process.stdout.write(readFileSync(state.s3.envFile, "utf8"));
      },
    );

  dev
    .command("down")
    .description("stop every process the cluster started (also after a crash of `up`); --purge also deletes its directory")
    .addOption(dirOption())
    .option("--purge", "delete the cluster directory (etcd data, volumes, logs)")
    .action(async (flags: { dir: string; purge?: boolean }) => {
      const { stopped } = await (await cluster()).clusterDown(flags.dir, { purge: flags.purge ?? false });
      console.log(stopped.length ? `stopped ${stopped.join(", ")}` : `no running cluster in ${resolve(flags.dir)}`);
    });

  dev
    .command("status")
    .description("show the cluster's processes and nodes")
    .addOption(dirOption())
    .option("-o, --output <format>", "text or json", "text")
    .action(async (flags: { dir: string; output: string }) => {
      const status = await (await cluster()).clusterStatus(flags.dir);
      if (flags.output === "json") {
        console.log(JSON.stringify(status, null, 2));
      } else if (!status.state) {
        console.log(`no cluster in ${status.dir}`);
      } else {
        console.log(`cluster ${status.dir}: ${status.running ? "running" : "NOT running"} (Kubernetes ${status.state.kubernetesVersion})`);
        console.log(`export KUBECONFIG=${status.state.kubeconfig}`);
        if (status.state.prometheusUrl) console.log(`prometheus: ${status.state.prometheusUrl}`);
        if (status.state.s3) console.log(`s3: ${status.state.s3.endpoint} bucket ${status.state.s3.bucket} (keys: ${status.state.s3.envFile})`);
        if (status.state.registry) console.log(`registry: ${status.state.registry}`);
        for (const p of status.processes) console.log(`  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${p.alive ? "running" : "stopped"}`);
        for (const n of status.nodes) console.log(`  node ${n.name.padEnd(19)} ${n.ready ? "Ready" : "NotReady"}${n.gpus ? ` nvidia.com/gpu=${n.gpus}` : ""}`);
        if (status.pods !== undefined) console.log(`  pods: ${status.pods}`);
      }
      if (!status.running) process.exitCode = 1;
    });

  dev
    .command("node-agent", { hidden: true })
    .description("run the local nodes (the kubelet stand-in); `dev up` starts it")
    .requiredOption("--dir <dir>", "cluster directory")
    .requiredOption("--kubeconfig <file>", "credentials for the API server")
    .option("--nodes <n>", "CPU nodes", count("--nodes", 20), 1)
    .option("--gpu-nodes <n>", "GPU nodes", count("--gpu-nodes", 20), 1)
    .option("--image-repository <repo>", "image run as local processes", DEFAULT_IMAGE_REPOSITORY)
    .requiredOption("--pod-octet <n>", "pods get IPs 127.<n>.x.y", count("--pod-octet", 254))
    .option("--image-layout <dir>", "OCI layout whose images pods run from (repeatable)", (dir: string, dirs: string[]) => [...dirs, dir], [] as string[])
    .option("--image-by-tag", "also resolve tags in the layouts (else only digests; tags run the checkout's CLI)")
    .action(
      async (flags: {
        dir: string;
        kubeconfig: string;
        nodes: number;
        gpuNodes: number;
        imageRepository: string;
        podOctet: number;
        imageLayout: string[];
        imageByTag?: boolean;
      }) => {
        const [
          { pino },
          { NodeAgent },
          { ballastCliScript },
          { pinnedKubernetesVersion, ballastCacheDir: cacheDir },
          { KubeClient },
          { kubeletServingFiles },
          { LocalImages },
        ] = await Promise.all([
          import("pino"),
          import("../devcluster/node-agent.js"),
          cluster(),
          import("../devcluster/binaries.js"),
          import("../kube/client.js"),
          import("../devcluster/pki.js"),
          import("../devcluster/local-images.js"),
        ]);
        const pkiDir = join(resolve(flags.dir), "pki");
        const log = pino({ base: { component: "local-nodes" } });
        const agent = new NodeAgent({
          clusterDir: resolve(flags.dir),
          client: await KubeClient.load(flags.kubeconfig),
          cpuNodes: flags.nodes,
          gpuNodes: flags.gpuNodes,
          imageRepository: flags.imageRepository,
          kubernetesVersion: pinnedKubernetesVersion(),
          podOctet: flags.podOctet,
          ballastCommand: [process.execPath, ballastCliScript],
          // Node's install dir (…/bin/node → …) and the checkout (…/dist/cli/main.js → …).
          programDirs: [dirname(dirname(process.execPath)), dirname(dirname(dirname(ballastCliScript)))],
          ...(flags.imageLayout.length > 0
            ? { images: new LocalImages({ layouts: flags.imageLayout, cacheDir: join(cacheDir(), "images"), byTag: flags.imageByTag ?? false }) }
            : {}),
          kubeletTls: { ...kubeletServingFiles(pkiDir), ca: join(pkiDir, "ca.crt") },
          log,
        });
        const stop = () => {
          log.info("stopping local nodes: terminating pods");
          void agent.shutdown().then(() => process.exit(0));
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        await agent.run();
      },
    );

  dev
    .command("echo")
    .description("diagnostic HTTP server for checking pods: answers JSON with its pod name, namespace and IP")
    .option("--host <host>", "address to bind (default: $POD_IP, else 0.0.0.0)")
    .option("--port <port>", "port", count("--port", 65535), 8080)
    .action(async (flags: { host?: string; port: number }) => {
      const who = {
        pod: process.env.POD_NAME ?? "",
        namespace: process.env.POD_NAMESPACE ?? "",
        podIP: process.env.POD_IP ?? "",
        node: process.env.NODE_NAME ?? "",
      };
      const host = flags.host ?? (process.env.POD_IP || "0.0.0.0");
      const { startEchoServer } = await import("../devcluster/echo-server.js");
      const server = await startEchoServer(host, flags.port, who);
      console.log(JSON.stringify({ msg: "echo server listening", host, port: flags.port }));
      const stop = () => server.close(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });

  dev
    .command("job")
    .description("diagnostic batch command: works for --seconds, then exits with --exit-code")
    .option("--seconds <s>", "how long to run", (v) => Number(v), 1)
    .option("--exit-code <code>", "exit status", count("--exit-code", 255), 0)
    .option("--log-lines <n>", "first print n numbered lines (`line 1` …), to check what the logs show", count("--log-lines", 1_000_000), 0)
    .option("--log-pid", "first print `started pid <pid>`, so each run of a restarted container is told apart in its logs")
    .option("--termination-message <text>", "write text to --termination-message-path before exiting, as a container reports its result")
    .option("--termination-message-path <file>", "where the termination message goes (the container's terminationMessagePath)", "/dev/termination-log")
    .action(
      async (flags: { seconds: number; exitCode: number; logLines: number; logPid?: boolean; terminationMessage?: string; terminationMessagePath: string }) => {
        if (flags.logPid) console.log(`started pid ${process.pid}`);
        for (let i = 1; i <= flags.logLines; i++) console.log(`line ${i}`);
        await new Promise((r) => setTimeout(r, flags.seconds * 1000));
        if (flags.terminationMessage !== undefined) {
          const { writeFileSync } = await import("node:fs");
          writeFileSync(flags.terminationMessagePath, flags.terminationMessage);
        }
        console.log(JSON.stringify({ msg: "job finished", exitCode: flags.exitCode }));
        process.exit(flags.exitCode);
      },
    );
}
