// Free TCP ports for the control plane: ask the kernel for an ephemeral port, and never hand the same one out twice.
import { connect, createServer } from "node:net";

export class PortAllocator {
  private readonly given = new Set<number>();

  constructor(private readonly host = "127.0.0.1") {}

  async allocate(): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await probeFreePort(this.host);
      if (!this.given.has(port)) {
        this.given.add(port);
        return port;
      }
    }
    throw new Error(`no free TCP port on ${this.host} after 50 attempts`);
  }
}

/** Binds port 0, reads the port the kernel chose, closes. The caller binds it next, so a race is possible but rare. */
export function probeFreePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const addr = server.address();
      server.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function isListening(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (listening: boolean) => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
