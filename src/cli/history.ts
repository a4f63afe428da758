// `ballast history <modeldeployment>`: the model's story — versions, triggers, Jobs, gate numbers,
// promotions, rollbacks and the recent windows — from what the API server keeps. Read-only.
import { Command, Option } from "commander";
import type { ModelDeployment } from "../api/v1alpha1.js";
import { KubeApiError, KubeClient, resourcePath, type KubeList } from "../kube/client.js";
import { MODEL_DEPLOYMENTS } from "../operator/resources.js";
import { LABEL_MODEL_DEPLOYMENT } from "../operator/serving/desired-state.js";
import { buildStory, formatStory, type StoryEvent, type StoryJob } from "../api/model-story.js";

const OUTPUTS = ["table", "json"] as const;

interface HistoryFlags {
  namespace: string;
  output: (typeof OUTPUTS)[number];
  kubeconfig?: string;
}

export async function readStory(client: KubeClient, namespace: string, name: string) {
  const md = await client.get<ModelDeployment>(resourcePath(MODEL_DEPLOYMENTS, namespace, name));
  const uid = md.metadata.uid;
  const [events, jobs] = await Promise.all([
    // By uid: Events of an earlier object of the same name are not this model's story.
    client.get<KubeList<StoryEvent>>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      query: { fieldSelector: `involvedObject.kind=ModelDeployment,involvedObject.name=${name}${uid ? `,involvedObject.uid=${uid}` : ""}` },
    }),
    client.get<KubeList<StoryJob>>(`/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`, {
      query: { labelSelector: `${LABEL_MODEL_DEPLOYMENT}=${name}` },
    }),
  ]);
  return buildStory(md, events.items, jobs.items);
}

export function registerHistory(program: Command): void {
  program
    .command("history")
    .description("Tell a ModelDeployment's story: versions served, retraining triggers and Jobs, gate numbers, promotions, rollbacks, recent windows.")
    .argument("<modeldeployment>", "name of the ModelDeployment")
    .option("-n, --namespace <ns>", "namespace of the ModelDeployment", "default")
    .addOption(new Option("-o, --output <format>", "table or json").choices(OUTPUTS).default("table"))
    .addOption(new Option("--kubeconfig <path>", "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then the in-cluster ServiceAccount").env("KUBECONFIG"))
    .addHelpText(
      "after",
      `
Reads the ModelDeployment's status (history, recentWindows, lastRetraining), its Events and its retraining
Jobs; needs get on modeldeployments and list on events and jobs in the namespace. The windows are the
operator's merge of the sidecars' summaries (the sidecars' monitoring port admits only the operator).

Examples:
  ballast history penguins -n ballast-demo
  ballast history penguins -n ballast-demo -o json | jq '.steps[] | select(.what == "Promoted")'`,
    )
    .action(async (name: string, flags: HistoryFlags) => {
      const client = await KubeClient.load(flags.kubeconfig);
      try {
        const story = await readStory(client, flags.namespace, name);
        process.stdout.write(flags.output === "json" ? `${JSON.stringify(story, null, 2)}\n` : `${formatStory(story)}\n`);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.notFound)) throw err;
        console.error(`ballast history: ModelDeployment ${flags.namespace}/${name} not found`);
        process.exitCode = 1;
      } finally {
        await client.close();
      }
    });
}
