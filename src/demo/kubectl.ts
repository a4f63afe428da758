// The cluster's kubectl, run the way a person would type it: every command the demo runs is one they can re-run.
import { execFile } from "node:child_process";

export class KubectlError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number,
  ) {
    super(`\`${command}\` failed (exit ${exitCode}): ${stderr.trim() || "no output"}`);
  }
}

export interface KubectlOptions {
  /** Piped to stdin (`-f -`). */
  input?: string;
  timeoutMs?: number;
  /** Aborting kills the kubectl process (Ctrl-C during a `kubectl wait`). */
  signal?: AbortSignal;
}

export class Kubectl {
  constructor(
    readonly binary: string,
    readonly kubeconfig: string,
  ) {}

  /** The command line as shown to the person (KUBECONFIG is exported for them, so it is left out). */
  display(args: readonly string[]): string {
    return ["kubectl", ...args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`))].join(" ");
  }

  run(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.binary,
        ["--kubeconfig", this.kubeconfig, ...args],
        { maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 300_000, ...(options.signal ? { signal: options.signal } : {}) },
        (err, stdout, stderr) => {
          if (err) reject(new KubectlError(this.display(args), stderr || err.message, typeof err.code === "number" ? err.code : 1));
          else resolve(stdout);
        },
      );
      if (options.input !== undefined) child.stdin!.end(options.input);
    });
  }

  async json<T>(args: readonly string[], options: KubectlOptions = {}): Promise<T> {
    return JSON.parse(await this.run([...args, "-o", "json"], options)) as T;
  }

  /** `get` that answers undefined for a missing object instead of failing. */
  async getOrUndefined<T>(args: readonly string[]): Promise<T | undefined> {
    const out = await this.run([...args, "--ignore-not-found", "-o", "json"]);
    return out.trim() === "" ? undefined : (JSON.parse(out) as T);
  }
}
