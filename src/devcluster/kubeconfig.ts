// Kubeconfig files for the local cluster: one for the person (admin) and one per control plane component.
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { stringify } from "yaml";

export interface KubeconfigInput {
  server: string;
  caCertFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  user: string;
  clusterName?: string;
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const cluster = input.clusterName ?? "ballast-dev";
  const b64 = (file: string) => readFileSync(file).toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server: input.server, "certificate-authority-data": b64(input.caCertFile) } }],
    users: [{ name: input.user, user: { "client-certificate-data": b64(input.clientCertFile), "client-key-data": b64(input.clientKeyFile) } }],
    contexts: [{ name: cluster, context: { cluster, user: input.user } }],
    "current-context": cluster,
  });
}

/** 0600 even over an existing file: it embeds the client's private key. */
export function writeKubeconfig(path: string, input: KubeconfigInput): void {
  writeFileSync(path, renderKubeconfig(input), { mode: 0o600 });
  chmodSync(path, 0o600);
}
