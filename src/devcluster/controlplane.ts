// The command lines of the control plane components. Pure: given binaries, ports and paths, what to run.
import { join } from "node:path";
import type { ControlPlaneBinaries } from "./binaries.js";

export interface ControlPlanePorts {
  etcdClient: number;
  etcdPeer: number;
  apiServer: number;
  controllerManager: number;
  scheduler: number;
}

export interface ComponentSpec {
  name: "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";
  command: string;
  args: string[];
  /** What to poll until the component serves: a URL (https or http). */
  healthUrl: string;
  /** The client certificate the health URL demands (etcd serves only clients with one). */
  healthClientCert?: { cert: string; key: string };
}

export interface ControlPlaneNetwork {
  /** Services get virtual IPs from a loopback /16 (the local nodes serve them), so nothing off this machine is addressed. */
  serviceCidr: string;
}

export interface ControlPlanePaths {
  dir: string;
  pkiDir: string;
  /** The kubeconfig each component authenticates with (its own client certificate). */
  controllerManagerKubeconfig: string;
  schedulerKubeconfig: string;
}

/** Identity, health serving and single-instance flags that the controller manager and scheduler share. */
function componentServingArgs(kubeconfig: string, port: number, certDir: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${certDir}`,
    "--leader-elect=false",
    "--profiling=false",
    "--v=1",
  ];
}

export function controlPlaneSpecs(bins: ControlPlaneBinaries, ports: ControlPlanePorts, paths: ControlPlanePaths, net: ControlPlaneNetwork): ComponentSpec[] {
  const pki = (f: string) => join(paths.pkiDir, f);
  // etcd over TLS with client-certificate auth: anyone who can write to it owns the cluster (and, through a
  // hostPath pod, the user running it), so a local user without the cluster's keys must not reach it.
  const etcdClient = `https://127.0.0.1:${ports.etcdClient}`;
  const etcdPeer = `https://127.0.0.1:${ports.etcdPeer}`;
  const etcdClientCert = { cert: pki("apiserver-etcd-client.crt"), key: pki("apiserver-etcd-client.key") };
  const etcdCa = pki("etcd-ca.crt");
  return [
    {
      name: "etcd",
      command: bins.etcd,
      args: [
        "--name=ballast-dev",
        `--data-dir=${join(paths.dir, "etcd")}`,
        `--listen-client-urls=${etcdClient}`,
        `--advertise-client-urls=${etcdClient}`,
        `--listen-peer-urls=${etcdPeer}`,
        `--initial-advertise-peer-urls=${etcdPeer}`,
        `--initial-cluster=ballast-dev=${etcdPeer}`,
        `--cert-file=${pki("etcd.crt")}`,
        `--key-file=${pki("etcd.key")}`,
        "--client-cert-auth=true",
        `--trusted-ca-file=${etcdCa}`,
        `--peer-cert-file=${pki("etcd.crt")}`,
        `--peer-key-file=${pki("etcd.key")}`,
        "--peer-client-cert-auth=true",
        `--peer-trusted-ca-file=${etcdCa}`,
        // A throwaway development store: skipping fsync is what envtest does, and makes writes ~10x faster.
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      healthUrl: `${etcdClient}/health`,
      healthClientCert: etcdClientCert,
    },
    {
      name: "kube-apiserver",
      command: bins.kubeApiserver,
      args: [
        `--etcd-servers=${etcdClient}`,
        `--etcd-cafile=${etcdCa}`,
        `--etcd-certfile=${etcdClientCert.cert}`,
        `--etcd-keyfile=${etcdClientCert.key}`,
        `--cert-dir=${paths.pkiDir}`,
        `--tls-cert-file=${pki("apiserver.crt")}`,
        `--tls-private-key-file=${pki("apiserver.key")}`,
        `--client-ca-file=${pki("ca.crt")}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        // The apiserver refuses a loopback address for the kubernetes Service endpoints; in-cluster clients
        // on the local nodes get KUBERNETES_SERVICE_HOST=127.0.0.1 instead.
        "--endpoint-reconciler-type=none",
        `--secure-port=${ports.apiServer}`,
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${pki("sa.pub")}`,
        `--service-account-signing-key-file=${pki("sa.key")}`,
        `--service-cluster-ip-range=${net.serviceCidr}`,
        // `kubectl logs` goes through the local nodes' kubelet API: the API server proves itself with its own
        // client certificate and checks each node's serving certificate against the cluster CA.
        `--kubelet-client-certificate=${pki("apiserver-kubelet-client.crt")}`,
        `--kubelet-client-key=${pki("apiserver-kubelet-client.key")}`,
        `--kubelet-certificate-authority=${pki("ca.crt")}`,
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
      ],
      healthUrl: `https://127.0.0.1:${ports.apiServer}/readyz`,
    },
    {
      name: "kube-controller-manager",
      command: bins.kubeControllerManager,
      args: [
        ...componentServingArgs(paths.controllerManagerKubeconfig, ports.controllerManager, join(paths.dir, "controller-manager")),
        `--service-account-private-key-file=${pki("sa.key")}`,
        `--root-ca-file=${pki("ca.crt")}`,
        `--cluster-signing-cert-file=${pki("ca.crt")}`,
        `--cluster-signing-key-file=${pki("ca.key")}`,
        "--use-service-account-credentials=true",
        `--service-cluster-ip-range=${net.serviceCidr}`,
      ],
      healthUrl: `https://127.0.0.1:${ports.controllerManager}/healthz`,
    },
    {
      name: "kube-scheduler",
      command: bins.kubeScheduler,
      args: [...componentServingArgs(paths.schedulerKubeconfig, ports.scheduler, join(paths.dir, "scheduler"))],
      healthUrl: `https://127.0.0.1:${ports.scheduler}/healthz`,
    },
  ];
}
