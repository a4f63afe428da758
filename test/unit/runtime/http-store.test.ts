// The read-only HTTP(S) model store against real in-process servers: https with a self-signed CA, no downgrade
// on redirect, plain http only to loopback unless allowed, a size cap per file, timeouts, and index.json digests.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpModelStore, INDEX_FILE, METADATA_FILE, StoreError, httpLimitsFromEnv, openStore, resolveVersion } from "../../../src/runtime/store.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-http-store-");

let root: string;
let cert: { key: string; cert: string };
const servers: (http.Server | https.Server)[] = [];

/** A self-signed certificate for 127.0.0.1 (openssl, as a person setting up a private store would). */
function selfSigned(dir: string): { key: string; cert: string } {
  const key = path.join(dir, "key.pem");
  const crt = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      key,
      "-out",
      crt,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "pipe" },
  );
  return { key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(crt, "utf8") };
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Serves the store directory; `routes` answer some paths differently (redirects, stalls, endless bodies). */
function handler(routes: Record<string, Handler> = {}): Handler {
  return (req, res) => {
    const p = decodeURIComponent(new URL(req.url!, "http://x").pathname);
    const route = routes[p];
    if (route) return route(req, res);
    const file = path.join(root, p);
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) res.writeHead(404).end();
    else {
      const bytes = fs.readFileSync(file);
      res.writeHead(200, { "content-length": bytes.length }).end(bytes);
    }
  };
}

async function listen(server: http.Server | https.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const scheme = server instanceof https.Server ? "https" : "http";
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const httpsServer = (routes?: Record<string, Handler>): Promise<string> => listen(https.createServer(cert, handler(routes)));
const httpServer = (routes?: Record<string, Handler>): Promise<string> => listen(http.createServer(handler(routes)));

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "ballast-http-store-root-"));
  cert = selfSigned(root);
  const files = new Map<string, string | Uint8Array>([
    [METADATA_FILE, JSON.stringify({ createdAt: "2026-01-01T00:00:00Z" })],
    ["weights.bin", new Uint8Array(4096).fill(7)],
  ]);
  await openStore(root).writeVersion("m", "v1", files);
});

afterAll(() => {
  for (const s of servers) s.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("HttpModelStore over https", () => {
  it("loads a version over https with a private CA, checking every file against the SHA-256 the index lists", async () => {
    const store = openStore(await httpsServer(), { http: { ca: cert.cert } });
    expect(await resolveVersion(store, "m")).toBe("v1");
    expect(await store.readFile("m", "v1", "weights.bin")).toEqual(Buffer.alloc(4096, 7));
    const index = JSON.parse(fs.readFileSync(path.join(root, "m", INDEX_FILE), "utf8")) as { versions: { files: Record<string, string> }[] };
    expect(Object.keys(index.versions[0]!.files).sort()).toEqual([METADATA_FILE, "weights.bin"]);
    // Without the CA the certificate is not trusted.
    await expect(openStore(await httpsServer()).listVersions("m")).rejects.toThrow(/self-signed certificate/);
  });

  it("refuses a version whose file does not match its digest, or a file the index does not list", async () => {
    const dir = tempDir();
    fs.cpSync(path.join(root, "m"), path.join(dir, "m"), { recursive: true });
    const served = http.createServer((req, res) => {
      const file = path.join(dir, decodeURIComponent(new URL(req.url!, "http://x").pathname));
      if (!fs.existsSync(file)) res.writeHead(404).end();
      else res.writeHead(200).end(fs.readFileSync(file));
    });
    const store = openStore(await listen(served));
    fs.writeFileSync(path.join(dir, "m", "v1", "weights.bin"), Buffer.alloc(4096, 8)); // replaced on the server
    fs.writeFileSync(path.join(dir, "m", "v1", "extra.bin"), "not part of the version");
    const err = await store.readFile("m", "v1", "weights.bin").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({
      code: "integrity",
      message: expect.stringMatching(/weights\.bin: SHA-256 [0-9a-f]{64} does not match [0-9a-f]{64} in index\.json; refusing version v1/),
    });
    await expect(store.readFile("m", "v1", "extra.bin")).rejects.toThrow(/extra\.bin: not among the files index\.json lists for version v1/);
  });

  it("never follows a redirect from https to http", async () => {
    const plain = await httpServer();
    const downgrading = openStore(await httpsServer({ "/m/index.json": (_req, res) => res.writeHead(302, { location: `${plain}m/index.json` }).end() }), {
      http: { ca: cert.cert },
    });
    await expect(downgrading.listVersions("m")).rejects.toThrow(/redirect to http:\/\/127\.0\.0\.1:\d+\/m\/index\.json refused: it leaves https/);
    // A redirect that stays on https is followed.
    const moved = await httpsServer({ "/old/m/index.json": (_req, res) => res.writeHead(301, { location: "/m/index.json" }).end() });
    expect(await resolveVersion(openStore(`${moved}old/`, { http: { ca: cert.cert } }), "m")).toBe("v1");
  });
});

describe("HttpModelStore limits", () => {
  it("allows plain http only to loopback unless BALLAST_ALLOW_INSECURE_HTTP=true", () => {
    expect(() => openStore("http://models.example/store")).toThrow(/plain http to a host other than loopback is refused.*BALLAST_ALLOW_INSECURE_HTTP=true/);
    expect(() => openStore("http://models.example/store", { http: { allowInsecureHttp: true } })).not.toThrow();
    expect(() => openStore("http://localhost:8080/store")).not.toThrow();
    expect(httpLimitsFromEnv({ BALLAST_ALLOW_INSECURE_HTTP: "true", BALLAST_HTTP_MAX_BYTES: "1048576" })).toEqual({
      allowInsecureHttp: true,
      maxBytes: 1_048_576,
    });
    expect(() => httpLimitsFromEnv({ BALLAST_ALLOW_INSECURE_HTTP: "yes" })).toThrow(/BALLAST_ALLOW_INSECURE_HTTP must be "true" or "false"/);
    expect(() => httpLimitsFromEnv({ BALLAST_HTTP_MAX_BYTES: "1e99" })).toThrow(/BALLAST_HTTP_MAX_BYTES must be a positive number of bytes/);
  });

  it("refuses a file over the size cap, by Content-Length or while it streams", async () => {
    const endless: Handler = (_req, res) => {
      res.writeHead(200); // chunked: no Content-Length to refuse up front
      const chunk = Buffer.alloc(16 * 1024);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    };
    const store = new HttpModelStore(await httpServer({ "/endless.bin": endless }), { maxBytes: 1024 });
    await expect(store.readFile("m", "v1", METADATA_FILE)).resolves.toBeDefined();
    await expect(store.readFile("m", "v1", "weights.bin")).rejects.toThrow(/weights\.bin: 4096 bytes is over the limit of 1024/);
    await expect(store.fetchFile("endless.bin")).rejects.toThrow(/body passed the limit of 1024 bytes/);
  });

  it("gives up on a server that never answers, or stalls in the middle of a body", async () => {
    const store = new HttpModelStore(
      await httpServer({
        "/m/index.json": () => {}, // accepts, never answers
        "/stalls.bin": (_req, res) => {
          res.writeHead(200, { "content-length": "4096" });
          res.write(Buffer.alloc(100)); // then nothing
        },
      }),
      { responseTimeoutMs: 200, idleTimeoutMs: 200 },
    );
    const started = Date.now();
    await expect(store.listVersions("m")).rejects.toThrow(/index\.json: no response within 200 ms/);
    await expect(store.fetchFile("stalls.bin")).rejects.toThrow(/body stalled for 200 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
