// Reads the common kubeconfig shapes (certificates, bearer tokens, token files, impersonation) and the
// in-cluster ServiceAccount without importing @kubernetes/client-node, whose generated API costs ~90 MiB
// of RSS at import. Anything else (exec and auth-provider plugins, proxies, merged KUBECONFIG lists)
// answers undefined, and the caller falls back to client-node's KubeConfig.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

export interface ClusterAccess {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
  /** Current bearer token; re-read from `tokenFile` by the caller's refresh. */
  token?: string;
  tokenFile?: string;
  basicAuth?: { username: string; password: string };
  /** kubeconfig `as`: the Impersonate-User header. */
  impersonate?: string;
  /** Who we are, for logs. */
  user: string;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

type Named<T> = { name: string } & T;
interface KubeconfigFile {
  "current-context"?: string;
  contexts?: Named<{ context?: { cluster?: string; user?: string } }>[];
  clusters?: Named<{ cluster?: Record<string, unknown> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
}

/** `--kubeconfig`, else $KUBECONFIG ("list" when it names several files); undefined when neither is set. */
export function defaultKubeconfigPath(flag?: string): string | undefined | "list" {
  if (flag) return flag;
  const env = process.env.KUBECONFIG;
  if (env) return env.includes(":") ? "list" : env;
  return undefined;
}

export function inClusterAccess(): ClusterAccess | undefined {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(join(SA_DIR, "token"))) return undefined;
  const tokenFile = join(SA_DIR, "token");
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(SA_DIR, "ca.crt")),
    token: readFileSync(tokenFile, "utf8").trim(),
    tokenFile,
    user: "in-cluster ServiceAccount",
  };
}

function fileOrData(entry: Record<string, unknown>, fileKey: string, dataKey: string, base: string): Buffer | undefined {
  const data = entry[dataKey];
  if (typeof data === "string" && data) return Buffer.from(data, "base64");
  const file = entry[fileKey];
  if (typeof file === "string" && file) return readFileSync(isAbsolute(file) ? file : join(base, file));
  return undefined;
}

/** Parses one kubeconfig file; undefined when it needs client-node (exec, auth-provider, proxy). */
export function kubeconfigAccess(path: string): ClusterAccess | undefined {
  const kc = parse(readFileSync(path, "utf8")) as KubeconfigFile;
  const base = dirname(path);
  const ctxName = kc["current-context"];
  const ctx = kc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`${path}: current-context "${ctxName ?? ""}" is not among its contexts`);
  const cluster = kc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") throw new Error(`${path}: cluster "${ctx.cluster ?? ""}" of context "${ctxName}" has no server`);
  const user = kc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user.exec || user["auth-provider"] || cluster["proxy-url"]) return undefined;
  const tokenFile = typeof user.tokenFile === "string" ? (isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile)) : undefined;
  const token = typeof user.token === "string" ? user.token : tokenFile ? readFileSync(tokenFile, "utf8").trim() : undefined;
  return {
    server: cluster.server.replace(/\/$/, ""),
    ca: fileOrData(cluster, "certificate-authority", "certificate-authority-data", base),
    skipTLSVerify: cluster["insecure-skip-tls-verify"] === true,
    tlsServerName: typeof cluster["tls-server-name"] === "string" ? cluster["tls-server-name"] : undefined,
    cert: fileOrData(user, "client-certificate", "client-certificate-data", base),
    key: fileOrData(user, "client-key", "client-key-data", base),
    token,
    tokenFile,
    basicAuth: typeof user.username === "string" && typeof user.password === "string" ? { username: user.username, password: user.password } : undefined,
    impersonate: typeof user.as === "string" ? user.as : undefined,
    user: typeof user.as === "string" ? user.as : (ctx.user ?? "unknown"),
  };
}
