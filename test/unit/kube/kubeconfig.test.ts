import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kubeconfigAccess } from "../../../src/kube/kubeconfig.js";

function kubeconfig(user: string, cluster = "server: https://127.0.0.1:6443\n      certificate-authority-data: Q0E="): string {
  const dir = mkdtempSync(join(tmpdir(), "kc-"));
  writeFileSync(join(dir, "token"), "file-token\n");
  const path = join(dir, "config");
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: dev
contexts:
  - name: dev
    context: {cluster: local, user: me}
clusters:
  - name: local
    cluster:
      ${cluster}
users:
  - name: me
    user:
${user}
`,
  );
  return path;
}

describe("reading a kubeconfig without client-node", () => {
  it("takes certificates, CA and impersonation from the current context", () => {
    const a = kubeconfigAccess(
      kubeconfig("      client-certificate-data: Q0VSVA==\n      client-key-data: S0VZ\n      as: system:serviceaccount:ballast-system:ballast-operator"),
    )!;
    expect(a.server).toBe("https://127.0.0.1:6443");
    expect(a.ca!.toString()).toBe("CA");
    expect(a.cert!.toString()).toBe("CERT");
    expect(a.key!.toString()).toBe("KEY");
    expect(a.impersonate).toBe("system:serviceaccount:ballast-system:ballast-operator");
    expect(a.user).toBe("system:serviceaccount:ballast-system:ballast-operator");
  });

  it("reads a token file relative to the kubeconfig", () => {
    const a = kubeconfigAccess(kubeconfig("      tokenFile: token"))!;
    expect(a.token).toBe("file-token");
    expect(a.tokenFile).toMatch(/token$/);
  });

  it("leaves exec plugins and proxies to client-node", () => {
    expect(kubeconfigAccess(kubeconfig("      exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}"))).toBeUndefined();
    expect(kubeconfigAccess(kubeconfig("      token: t", "server: https://x\n      proxy-url: http://proxy:3128"))).toBeUndefined();
  });

  it("names the file and the context when the current context is missing", () => {
    const path = kubeconfig("      token: t");
    writeFileSync(path, "current-context: nope\ncontexts: []\n");
    expect(() => kubeconfigAccess(path)).toThrow(/current-context "nope" is not among its contexts/);
  });
});
