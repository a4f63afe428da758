import { readFileSync } from "node:fs";

// Pod IPs from the loopback range: every address in 127.0.0.0/8 reaches this machine's lo interface
// without configuration, so each pod can bind its own address and nothing leaves the machine.
export class LoopbackIPAllocator {
  private readonly byPod = new Map<string, string>();
  private readonly inUse = new Set<string>();
  private next = 0;

  /** Pods get 127.<second>.x.y; nodes use 127.0.1.x, the API server 127.0.0.1. */
  constructor(private readonly second: number) {}

  allocate(podUID: string): string {
    const have = this.byPod.get(podUID);
    if (have) return have;
    for (let i = 0; i < 65_534; i++) {
      const n = ((this.next + i) % 65_534) + 1;
      const ip = `127.${this.second}.${n >> 8}.${n & 0xff}`;
      if ((n & 0xff) === 0 || (n & 0xff) === 255 || this.inUse.has(ip)) continue;
      this.next = n;
      this.inUse.add(ip);
      this.byPod.set(podUID, ip);
      return ip;
    }
    throw new Error("no free pod IP in the loopback range");
  }

  release(podUID: string): void {
    const ip = this.byPod.get(podUID);
    if (!ip) return;
    this.byPod.delete(podUID);
    this.inUse.delete(ip);
  }
}

/** Second octets of 127.x.y.z addresses that have listening TCP sockets now (any cluster on this machine). */
export function loopbackOctetsInUse(procNetTcp = "/proc/net/tcp"): Set<number> {
  const used = new Set<number>();
  let text: string;
  try {
    text = readFileSync(procNetTcp, "utf8");
  } catch {
    return used;
  }
  for (const line of text.split("\n").slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (!local) continue;
    // Little-endian hex: "0100007F:1F90" is 127.0.0.1:8080.
    const hex = local.split(":")[0]!;
    const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).reverse();
    if (bytes[0] === 127) used.add(bytes[1]!);
  }
  return used;
}

/**
 * Two distinct /16 blocks of 127.0.0.0/8 for one cluster's pods and Services, avoiding blocks where some
 * socket listens already, so several clusters (a developer's and a test run's) can share one machine.
 */
export function chooseLoopbackBlocks(inUse = loopbackOctetsInUse(), random = Math.random): { podOctet: number; serviceOctet: number } {
  const free: number[] = [];
  for (let o = 100; o <= 254; o++) if (!inUse.has(o)) free.push(o);
  if (free.length < 2) throw new Error("no free /16 block in 127.0.0.0/8 for pod and Service addresses");
  const podOctet = free.splice(Math.floor(random() * free.length), 1)[0]!;
  const serviceOctet = free[Math.floor(random() * free.length)]!;
  return { podOctet, serviceOctet };
}
