// The shipped weather example (examples/) brought up in one namespace by whichever operator watches it:
// the model store claim, a first trained version in the claim's directory, then the ModelDeployment.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { inject } from "vitest";
import { parse, stringify } from "yaml";
import { kubectl, kubectlOk } from "./kubectl.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;

/** An example manifest from examples/ moved into `namespace`. */
export function exampleIn(file: string, namespace: string): string {
  const obj = parse(readFileSync(`${repoRoot}examples/${file}`, "utf8")) as { metadata: { namespace?: string } };
  obj.metadata.namespace = namespace;
  return stringify(obj);
}

/** Applies the example into `namespace` and waits until its ModelDeployment is Ready (throws with its status otherwise). */
export function serveWeatherExample(namespace: string): void {
  const clusterDir = inject("clusterDir");
  if (clusterDir === "") throw new Error("this test needs a `ballast dev` cluster (its directory holds the claim's data)");
  const ballast = `${repoRoot}bin/ballast`;
  if (!existsSync(ballast)) throw new Error("bin/ballast is missing: run `make build`");
  kubectlOk(["apply", "-f", "-"], exampleIn("model-store-pvc.yaml", namespace));
  kubectlOk(["wait", "--for=jsonpath={.status.phase}=Bound", "pvc/ballast-models", "-n", namespace, "--timeout=60s"]);
  // A first version in the claim, as the example's header tells users to do.
  const store = `file://${clusterDir}/volumes/${namespace}/ballast-models/store`;
  const data = `${repoRoot}node_modules/vega-datasets/data/weather.csv`;
  execFileSync(
    ballast,
    [
      "train",
      "--data",
      data,
      "--label",
      "weather",
      "--features",
      "precipitation,temp_max,temp_min,wind",
      "--store",
      store,
      "--model",
      "weather",
      "--epochs",
      "5",
    ],
    {
      stdio: "ignore",
      timeout: 120_000,
    },
  );
  kubectlOk(["apply", "-f", "-"], exampleIn("weather-classifier.yaml", namespace));
  const ready = kubectl(["wait", "--for=condition=Ready", "modeldeployment/weather", "-n", namespace, "--timeout=180s"]);
  if (ready.status !== 0)
    throw new Error(`not Ready: ${ready.stderr}\n${kubectl(["get", "modeldeployment", "weather", "-n", namespace, "-o", "yaml"]).stdout}`);
}

/** Deletes the example's ModelDeployment (its operator must still run to release the finalizer) and claim. */
export function removeWeatherExample(namespace: string): void {
  kubectlOk(["delete", "modeldeployment", "weather", "-n", namespace, "--ignore-not-found", "--timeout=120s"]);
  kubectlOk(["delete", "pvc", "ballast-models", "-n", namespace, "--ignore-not-found", "--timeout=60s"]);
}
