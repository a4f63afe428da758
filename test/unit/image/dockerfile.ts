// The Dockerfile's runtime stage read as data (no Docker here to build it): what it copies where, its user,
// entrypoint, working directory, environment and labels, to compare with the image `make image` builds.
import { readFileSync } from "node:fs";
import { posix } from "node:path";

export interface DockerfileStage {
  from: string;
  workdir: string;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Absolute destination in the image → the source (a build-context path, or `<stage>:<path>`). */
  copies: Map<string, string>;
  runs: string[];
}

/** Every stage of the Dockerfile at `file`, in order (the last one is the image). */
export function dockerfileStages(file: string): DockerfileStage[] {
  // Continuation lines join into one instruction; comments and blank lines go.
  const instructions = readFileSync(file, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: DockerfileStage[] = [];
  for (const line of instructions) {
    const [keyword, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (keyword === "FROM") {
      stages.push({ from: args, workdir: "/", env: {}, labels: {}, copies: new Map(), runs: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) continue; // ARG before the first FROM
    switch (keyword) {
      case "WORKDIR":
        stage.workdir = posix.resolve(stage.workdir, args);
        break;
      case "USER":
        stage.user = args;
        break;
      case "ENTRYPOINT":
        stage.entrypoint = JSON.parse(args) as string[];
        break;
      case "CMD":
        stage.cmd = JSON.parse(args) as string[];
        break;
      case "ENV":
        for (const [, k, v] of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) stage.env[k!] = v!.replace(/^"|"$/g, "");
        break;
      case "LABEL":
        for (const [, k, v] of args.matchAll(/([\w.-]+)=("[^"]*"|\S+)/g)) stage.labels[k!] = v!.replace(/^"|"$/g, "");
        break;
      case "RUN":
        stage.runs.push(args);
        break;
      case "COPY": {
        const words = rest.filter((w) => !w.startsWith("--chmod=") && !w.startsWith("--chown="));
        const fromStage = words[0]?.startsWith("--from=") ? words.shift()!.slice("--from=".length) : undefined;
        const dest = words.pop()!;
        for (const src of words) {
          const target = dest.endsWith("/") ? posix.join(dest, posix.basename(src)) : dest;
          stage.copies.set(posix.resolve(stage.workdir, target), fromStage ? `${fromStage}:${src}` : src);
        }
        break;
      }
    }
  }
  return stages;
}
