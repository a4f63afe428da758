// Plain HTTPS GETs against the control plane (health endpoints) with the cluster's client certificate.
import { request } from "node:https";
import { readFileSync } from "node:fs";

export interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
}

export function loadTlsClient(files: { ca?: string; cert?: string; key?: string }): TlsClient {
  const read = (f?: string) => (f ? readFileSync(f, "utf8") : undefined);
  return { ca: read(files.ca), cert: read(files.cert), key: read(files.key) };
}

/** Status code and body of GET url, or undefined when the connection fails (not listening yet). */
export function httpsGet(url: string, tls: TlsClient, timeoutMs = 2000): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", ...tls, rejectUnauthorized: tls.ca !== undefined, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}
