// The bare client of bench/operator-scale, as a process of its own: it POSTs the objects in a JSON file (the ones
// Ballast's desiredServingObjects makes, built by run.ts before it is spawned) with at most --in-flight requests over
// Ballast's client (one keep-alive pool), then exits. Spawned like the two operators, so its time too counts from
// process start: Node's start and the client's import are part of what a plain program creating the objects costs.
// Run by run.ts: node bench/operator-scale/bare-client.ts <kubeconfig> <objects.json> <in-flight>
import fs from "node:fs";
import path from "node:path";

const [kubeconfig, objectsFile, inFlightArg] = process.argv.slice(2);
const inFlight = Number(inFlightArg);
if (!kubeconfig || !objectsFile || !Number.isInteger(inFlight) || inFlight < 1) {
  console.error("usage: node bench/operator-scale/bare-client.ts <kubeconfig> <objects.json> <in-flight>");
  process.exit(2);
}
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const { KubeClient } = (await import(path.join(repo, "dist/kube/client.js"))) as typeof import("../../src/kube/client.js");
const writes = JSON.parse(fs.readFileSync(objectsFile, "utf8")) as [string, unknown][];
const api = await KubeClient.load(kubeconfig);
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(inFlight, writes.length) }, async () => {
    while (next < writes.length) {
      const [collection, obj] = writes[next++]!;
      await api.create(collection, obj);
    }
  }),
);
await api.close();
