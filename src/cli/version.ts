import { readFileSync } from "node:fs";

/** The version in package.json, which is also the image tag the operator deploys by default. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
