// The demo's closed loop on real data: a penguin sex classifier that learned Adelie birds meets
// Gentoo birds; the operator retrains it on the GPU node, gates the candidate, promotes it and watches it recover.
// The demo only sends traffic with labels and reads what the operator writes: every decision is the operator's.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { V1Deployment, V1Job, V1Pod } from "@kubernetes/client-node";
import { SIDECAR_PATHS, type ModelDeployment, type ResolvedModelDeployment } from "../api/index.js";
import { claimDir } from "../devcluster/pod-dirs.js";
import { isTrainFailure, parseTrainResult, type TrainSuccess } from "../training/result.js";
import {
  DEMO_NAMESPACE,
  EXAMPLE_FILES,
  PENGUIN_TRAINING_JOB,
  demoPenguinDeployment,
  firstVersionJob,
  penguinTrainingDataOf,
  readExamples,
} from "./manifests.js";
import { PENGUIN_FEATURES, PENGUIN_LABEL, loadPenguins, penguinsCsv, splitPenguins, type Penguin, type PenguinSplit } from "./penguins-data.js";
import { containerLogFile, podLogFiles } from "./pod-logs.js";
import {
  OPERATOR_DEPLOYMENT,
  OPERATOR_NAMESPACE,
  StepFailure,
  applyObjects,
  fmt,
  getModelDeployment,
  pollUntil,
  show,
  showBallast,
  waitUnlessCrashing,
  type Session,
} from "./session.js";
import { formatShadow, table } from "../api/model-story.js";
import { onlyVersionServes } from "./rollout.js";
import { sendTrafficWithFeedback, waitForService } from "./traffic.js";

const ROWS_PER_REQUEST = 5;
/** The loop reacts within a scrape or two; the demo scrapes every second. */
const SCRAPE_INTERVAL = "1s";
/**
 * Windows of 20 birds, not the example's 25: the data set has 119 Gentoo birds with a recorded sex, and the story
 * needs five new windows of them — two that degrade the model, one for the shadow, two to observe the promotion.
 */
const WINDOW_SIZE = 20;
const GENTOO_WINDOWS = 5;
/**
 * The shadow sized for the demo's traffic: one window of 20 birds, each request labelled right after its answer, is
 * mirrored in a few seconds, so one window's rows make the pairs and the labelled pairs (the operator's defaults,
 * 500 and 200 within 1h, fit production traffic). maxDuration covers the shadow pod's start on a busy machine
 * plus that window; 1m is the least the API admits.
 */
const SHADOW = { enabled: true, minPairs: WINDOW_SIZE, minLabelledPairs: WINDOW_SIZE, maxDuration: "2m" };
/** The first penguin version's seed: every run trains the same model and shows the same numbers. */
const FIRST_VERSION_SEED = 3;

export interface TimelineRow {
  window: number;
  traffic: string;
  windowEnd: string;
  rows: number;
  labelled: number;
  accuracy?: number;
  /** The label-free estimate of the same window's accuracy (status.lastMetrics.estimatedAccuracy). */
  estimatedAccuracy?: number;
  driftShare?: number;
  verdict: string;
  version: string;
  phase: string;
}

/** The penguin part of the demo: its data, its ModelDeployment, and the windows seen so far. */
export class PenguinLoop {
  readonly md: ModelDeployment;
  readonly name: string;
  readonly windowSize: number;
  /** The model's inputs: the example's monitoring.features, a subset of the data set's measurements. */
  readonly features: string[];
  readonly label: string;
  readonly split: PenguinSplit;
  /** Birds in the data set with a recorded sex and every measurement. */
  readonly birdCount: number;
  readonly timeline: TimelineRow[] = [];
  /** The example's own scrape interval, which the demo shortens. */
  private readonly exampleScrapeInterval: string;
  private readonly exampleWindowSize: number | undefined;
  private serviceUrl = "";
  private lastJudgedEnd = "";
  /** Request ids are unique per run, as a client's are: the retraining Job joins feedback by request id across pods' logs. */
  private readonly runId = Date.now().toString(36);
  /** When the penguin ModelDeployment was applied (ms): where Prometheus's answers about it start. */
  startedAt: number | undefined;
  /** Gentoo birds sent so far: each window gets new ones. */
  private gentooSent = 0;

  constructor(repoRoot: string) {
    const example = readExamples(repoRoot).penguinDeployment;
    this.exampleScrapeInterval = example.spec.monitoring.scrapeInterval ?? "the default";
    this.exampleWindowSize = example.spec.monitoring.window?.size;
    this.md = demoPenguinDeployment(example, { scrapeInterval: SCRAPE_INTERVAL, windowSize: WINDOW_SIZE, shadow: SHADOW });
    this.name = this.md.metadata.name!;
    const size = this.md.spec.monitoring.window?.size;
    if (!size) throw new Error(`${EXAMPLE_FILES.penguinDeployment}: the demo needs spec.monitoring.window.size`);
    this.windowSize = size;
    this.features = (this.md.spec.monitoring.features ?? []).map((f) => f.name);
    const unknown = this.features.filter((f) => !(PENGUIN_FEATURES as readonly string[]).includes(f));
    if (this.features.length === 0 || unknown.length > 0) {
      throw new Error(
        `${EXAMPLE_FILES.penguinDeployment}: spec.monitoring.features must name some of ${PENGUIN_FEATURES.join(", ")}${unknown.length ? ` (not ${unknown.join(", ")})` : ""}`,
      );
    }
    this.label = this.md.spec.monitoring.labelField ?? PENGUIN_LABEL;
    // Two windows of familiar birds are held back; one is the calm traffic.
    const birds = loadPenguins();
    this.birdCount = birds.length;
    this.split = splitPenguins(birds, 2 * size);
    const gentooNeeded = GENTOO_WINDOWS * size;
    if (this.split.gentoo.length < gentooNeeded)
      throw new Error(`${this.split.gentoo.length} Gentoo birds are too few for ${GENTOO_WINDOWS} windows of ${size}`);
  }

  /** The species the first version learned, in words ("Adelie"). */
  get knownSpecies(): string {
    return [...new Set(this.split.training.map((b) => b.species))].join(" and ");
  }

  get model(): string {
    return this.md.spec.model.name;
  }

  /**
   * Step 3, the penguin half: the original training data goes into the model store's claim, where the first
   * version's Job and later the operator's retraining Jobs read it (spec.retraining.data.sources).
   */
  firstVersionJob(s: Session, image: string): V1Job {
    const data = penguinTrainingDataOf(this.md);
    const file = join(claimDir(s.dir, DEMO_NAMESPACE, data.claim), data.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, penguinsCsv(this.split.training));
    s.narrator.say(
      `penguins: vega-datasets penguins.json, ${this.birdCount} birds with a recorded sex; ` +
        `${this.split.training.length} ${this.knownSpecies} birds to train on, ${this.split.familiar.length} other ${this.knownSpecies} birds kept back for traffic, ${this.split.gentoo.length} Gentoo birds the model never sees`,
    );
    s.narrator.say(`  the model reads ${this.features.join(", ")} and answers ${this.label}`);
    s.narrator.say(`  the original training data goes where ${EXAMPLE_FILES.penguinDeployment} spec.retraining.data.sources points: ${data.uri}`);
    s.narrator.say(`  (a data pipeline's job; on the local cluster the claim is a directory: ${file})`);
    const hp = this.md.spec.retraining?.hyperparameters;
    return firstVersionJob({
      name: PENGUIN_TRAINING_JOB,
      example: this.md,
      exampleFile: EXAMPLE_FILES.penguinDeployment,
      data: data.uri,
      label: this.label,
      features: this.features,
      image,
      epochs: hp?.epochs ?? 60,
      seed: FIRST_VERSION_SEED,
    });
  }

  // ---------------------------------------------------------------- step 6: serve it, familiar birds

  async serve(s: Session, version: string): Promise<void> {
    const { narrator, kubectl } = s;
    const previous = await kubectl.getOrUndefined<ModelDeployment>(["get", "modeldeployment", this.name, "-n", DEMO_NAMESPACE]);
    if (previous) {
      // A kept cluster: start from a fresh ModelDeployment (fresh windows, attempt 0, its Jobs garbage-collected).
      const del = ["delete", "modeldeployment", this.name, "-n", DEMO_NAMESPACE, "--cascade=foreground", "--timeout=120s"];
      narrator.command(kubectl.display(del));
      narrator.block(await kubectl.run(del, { signal: s.signal }));
    }
    const p = this.md.spec.policy ?? {};
    const pr = this.md.spec.promotion ?? {};
    narrator.say(
      `${EXAMPLE_FILES.penguinDeployment} with three demo choices: monitoring.scrapeInterval ${SCRAPE_INTERVAL} instead of ${this.exampleScrapeInterval} (the loop reacts sooner), ` +
        `windows of ${this.windowSize} birds instead of ${this.exampleWindowSize ?? "the default"} (five new windows of Gentoo birds must fit the data set's ${this.split.gentoo.length}), ` +
        `and promotion.shadow on: minPairs ${SHADOW.minPairs}, minLabelledPairs ${SHADOW.minLabelledPairs}, maxDuration ${SHADOW.maxDuration} — one window of labelled birds, ` +
        `mirrored in seconds, makes the pairs (the defaults 500, 200 and 1h are for production traffic)`,
    );
    narrator.say(
      `policy.triggerOn ${p.triggerOn ?? "auto"}, minLabelledSamples ${p.minLabelledSamples}, minAccuracy ${p.minAccuracy}, consecutiveWindows ${p.consecutiveWindows}; ` +
        `promotion.minImprovement ${pr.minImprovement}, observationWindows ${pr.observationWindows}`,
    );
    narrator.say(
      "each window shows its accuracy from the labels beside its label-free estimate (CBPE: the mean of the served rows' calibrated " +
        "confidence); with too few labels the policy judges the estimate",
    );
    this.startedAt = Date.now();
    await applyObjects(s, [this.md], "ModelDeployment penguins, the closed loop on");
    const wait = ["wait", "--for=condition=Ready", `modeldeployment/${this.name}`, "-n", DEMO_NAMESPACE, "--timeout=180s"];
    narrator.command(kubectl.display(wait));
    try {
      narrator.block(await waitUnlessCrashing(s, wait, DEMO_NAMESPACE, `ballast.dev/model-deployment=${this.name}`));
    } catch (err) {
      if (s.signal.aborted) throw err;
      throw new StepFailure(`ModelDeployment ${this.name} did not become Ready: ${(err as Error).message}`, this.lookAt(s.dir));
    }
    const svc = await kubectl.json<{ spec: { clusterIP: string; ports: { port: number }[] } }>(["get", "service", this.name, "-n", DEMO_NAMESPACE], {
      signal: s.signal,
    });
    this.serviceUrl = `http://${svc.spec.clusterIP}:${svc.spec.ports[0]!.port}`;
    await waitForService(`${this.serviceUrl}${SIDECAR_PATHS.ready}`, 30_000, s.signal);
    narrator.ok(`ModelDeployment ${this.name} Ready, serving ${this.model}/${version} at ${this.serviceUrl}`);
    await show(s, ["get", "md", this.name, "-n", DEMO_NAMESPACE, "-o", "wide"]);
    narrator.say(`watch along: kubectl get md ${this.name} -w     # the PHASE column is the loop`);

    const calm = await this.window(s, "familiar", this.split.familiar.slice(0, this.windowSize));
    if (calm.verdict !== "Healthy")
      throw new StepFailure(`the window of familiar birds was judged ${calm.verdict}, expected Healthy: ${await this.loopState(s)}`, this.lookAt(s.dir));
    narrator.ok(`familiar birds: accuracy ${fmt(calm.accuracy)} ≥ policy.minAccuracy ${p.minAccuracy}, window Healthy, loop ${calm.phase}`);
  }

  // ---------------------------------------------------------------- step 7: Gentoo birds, the operator retrains

  async degradeAndRetrain(s: Session): Promise<void> {
    const { narrator } = s;
    const p = this.md.spec.policy ?? {};
    narrator.say(
      `Gentoo birds: about 1.4 kg heavier than ${this.knownSpecies} birds, with shallower beaks; what tells the sexes apart among the birds it learned misleads on them`,
    );
    const first = await this.window(s, "Gentoo", this.nextGentoo());
    if (first.verdict !== "Violated")
      throw new StepFailure(`the first Gentoo window was judged ${first.verdict}, expected Violated: ${await this.loopState(s)}`, this.lookAt(s.dir));
    const second = await this.window(s, "Gentoo", this.nextGentoo(), (md) => (md.status?.loop?.phase !== "Stable" ? md : undefined), 60_000);
    if (second.phase !== "Training")
      throw new StepFailure(
        `after ${p.consecutiveWindows} violating windows the loop is ${second.phase}, expected Training: ${await this.loopState(s)}`,
        this.lookAt(s.dir),
      );
    let md = await getModelDeployment(s, this.name);
    const job = md.status?.lastRetraining?.jobName ?? `${this.name}-retrain-${md.status?.loop?.attempt ?? 1}`;
    narrator.say(`the policy triggered (status.policy.lastTriggerTime ${md.status?.policy?.lastTriggerTime}): the operator started Job ${job}`);
    const retraining = md.status?.conditions?.find((c) => c.type === "Retraining");
    if (retraining) narrator.say(`condition Retraining=${retraining.status} (${retraining.reason}): ${retraining.message}`);
    await show(s, ["get", "md", this.name, "-n", DEMO_NAMESPACE, "-o", "wide"]);

    const started = Date.now();
    const pod = await pollUntil(
      s,
      `the scheduler to place Job ${job}'s pod`,
      async () => (await this.jobPods(s, job)).find((p) => p.spec?.nodeName),
      120_000,
      1000,
    ).catch((err: Error) => this.fail(s, err.message, job));
    const jobObject = await s.kubectl.json<V1Job>(["get", "job", job, "-n", DEMO_NAMESPACE], { signal: s.signal });
    const container = jobObject.spec!.template.spec!.containers[0]!;
    narrator.say(
      `the scheduler placed pod ${pod.metadata!.name} on node ${pod.spec!.nodeName} (nvidia.com/gpu: ${String(container.resources?.limits?.["nvidia.com/gpu"] ?? "none")})`,
    );
    narrator.say(`  ballast ${(container.args ?? []).join(" ")}`);
    md = await pollUntil(
      s,
      `Job ${job} to finish and the operator to judge it`,
      async () => {
        const m = await getModelDeployment(s, this.name);
        return m.status?.loop?.phase !== "Training" ? m : undefined;
      },
      300_000,
      1000,
    ).catch((err: Error) => this.fail(s, err.message, job));
    const last = md.status?.lastRetraining;
    const finished = (await this.jobPods(s, job)).find((p) => p.status?.containerStatuses?.[0]?.state?.terminated) ?? pod;
    const logFile = containerLogFile(s.dir, DEMO_NAMESPACE, finished.metadata!.name!, finished.metadata!.uid!, container.name);
    if (last?.phase !== "Succeeded" || !last.gate) {
      throw new StepFailure(`retraining did not produce a gated candidate: lastRetraining ${JSON.stringify(last)}; ${await this.loopState(s)}`, [
        logFile,
        ...this.lookAt(s.dir),
      ]);
    }
    narrator.ok(`Job ${job} completed on node ${pod.spec!.nodeName} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    narrator.say(`its log: ${logFile}`);
    const report = trainReport(finished);
    if (report) {
      narrator.say(
        `its result (the pod's termination message, all the operator reads): ${report.version} from ${report.parentVersion}, trained on ${report.trainRows} rows ` +
          `(${report.feedbackRows} of them labelled feedback from the serving pods' log), tfjs backend ${report.backend}; ` +
          `trials ${report.trials.map((t) => `${t.name} ${fmt(t.validation)}`).join(", ")} (validation ${report.metric})`,
      );
    }
    const g = last.gate;
    const pr = (md as ResolvedModelDeployment).spec.promotion;
    narrator.say(`the gate (status.lastRetraining.gate): candidate ${last.candidateVersion} against the serving ${last.fromVersion}, on the same rows`);
    narrator.say(
      `  recent holdout: Gentoo-era feedback never trained on, ${g.recent.rows} rows: ${g.metric} ${fmt(g.recent.candidate)} vs ${fmt(g.recent.serving)} ` +
        `(+${fmt((g.recent.candidate ?? 0) - (g.recent.serving ?? 0))}, promotion.minImprovement ${pr.minImprovement})`,
    );
    if (g.original) {
      narrator.say(
        `  forgetting check: the first version's holdout of ${this.knownSpecies} birds, ${g.original.rows} rows: ${fmt(g.original.candidate)} vs ${fmt(g.original.serving)} ` +
          `(promotion.maxForgetting ${pr.maxForgetting})`,
      );
    }
    if (g.latencyRatio !== undefined)
      narrator.say(`  latency: candidate/serving ms per row ${fmt(g.latencyRatio, 2)} (promotion.maxLatencyRatio ${pr.maxLatencyRatio})`);
    for (const rule of g.message.split("; ")) narrator.say(`  ${rule}`);
    if (!g.passed)
      throw new StepFailure(`the gate rejected candidate ${last.candidateVersion} (${g.failedRule}): ${g.message}`, [logFile, ...this.lookAt(s.dir)]);
    narrator.ok(
      `gate passed: ${last.candidateVersion} ${g.metric} ${fmt(g.recent.candidate)} vs ${fmt(g.recent.serving)} on ${g.recent.rows} recent holdout rows`,
    );
  }

  // ---------------------------------------------------------------- step 8: the shadow

  async shadow(s: Session): Promise<void> {
    const { narrator } = s;
    const md = await getModelDeployment(s, this.name);
    const candidate = md.status?.lastRetraining?.candidateVersion;
    if (!candidate) throw new StepFailure(`no candidate version in status.lastRetraining: ${await this.loopState(s)}`, this.lookAt(s.dir));
    // Mirroring begins once a shadow pod is Ready and the serving sidecars took the mirror configuration:
    // status.shadow appears with the first scrape after that. Birds sent before would make no pairs.
    const mirroring = await pollUntil(
      s,
      `the serving pods to mirror to shadow ${candidate}`,
      async () => {
        const m = await getModelDeployment(s, this.name);
        if (m.status?.loop?.phase !== "Shadowing") throw new Error(`the loop is ${m.status?.loop?.phase}, not Shadowing`);
        return m.status.shadow?.version === candidate ? m : undefined;
      },
      120_000,
      1000,
    ).catch((err: Error) => this.fail(s, err.message));
    narrator.say(`status.loop: ${mirroring.status!.loop!.message}`);
    await show(s, ["get", "pods", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${this.name}`, "-o", "wide"]);
    narrator.ok(
      `the serving pods mirror every request to the shadow of ${candidate} (status.shadow since ${mirroring.status!.shadow!.since}); it is never behind the Service`,
    );
    narrator.say(
      `more Gentoo birds, answered by ${mirroring.status!.servingVersion} and, on a mirrored copy, by ${candidate}; each labelled right after its answer`,
    );
    const decided = (m: ModelDeployment) => (m.status?.loop?.phase !== "Shadowing" ? m : undefined);
    await this.window(s, "Gentoo", this.nextGentoo(), decided, 60_000);
    const after = await getModelDeployment(s, this.name);
    const verdict = after.status?.lastRetraining?.shadow;
    if (!verdict || verdict.version !== candidate || after.status?.loop?.phase === "Shadowing")
      throw new StepFailure(
        `the shadow of ${candidate} was not decided after a window of ${this.windowSize} labelled birds: ${await this.loopState(s)}`,
        this.lookAt(s.dir),
      );
    narrator.say("the shadow's verdict (status.lastRetraining.shadow, as `ballast history` prints it):");
    narrator.block(formatShadow(verdict).join("\n"));
    if (verdict.verdict !== "Passed") throw new StepFailure(`the shadow rejected ${candidate} (${verdict.failedRule}): ${verdict.message}`, this.lookAt(s.dir));
    narrator.ok(
      `shadow passed: ${verdict.metric} ${fmt(verdict.shadow)} vs ${fmt(verdict.serving)} on the same ${verdict.labelledPairs} labelled requests ` +
        `(${verdict.test ?? "paired test"} p ${fmt(verdict.pValue, 4)}), agreement ${fmt(verdict.agreement)}; the operator promotes ${candidate}`,
    );
  }

  // ---------------------------------------------------------------- step 9: promotion, observation, recovery

  async promoteAndObserve(s: Session): Promise<void> {
    const { narrator, kubectl } = s;
    const promoted = await pollUntil(
      s,
      "the candidate to be promoted",
      async () => {
        const m = await getModelDeployment(s, this.name);
        const phase = m.status?.loop?.phase;
        if (phase === "Observing" || phase === "Stable" || phase === "RollingBack") return m;
        return undefined;
      },
      180_000,
      1000,
    ).catch((err: Error) => this.fail(s, err.message));
    const st = promoted.status!;
    if (st.loop?.phase !== "Observing")
      throw new StepFailure(`the loop went to ${st.loop?.phase} instead of Observing: ${await this.loopState(s)}`, this.lookAt(s.dir));
    const deployment = await kubectl.json<V1Deployment>(["get", "deployment", `${this.name}-serving`, "-n", DEMO_NAMESPACE], { signal: s.signal });
    const args = deployment.spec!.template.spec!.containers[0]!.args ?? [];
    const pinned = args[args.indexOf("--version") + 1];
    narrator.ok(
      `promoted: status.targetVersion ${st.targetVersion} (previousVersion ${st.previousVersion}); the Deployment pins --version ${pinned}; the sidecars report ${st.servingVersion}`,
    );
    await show(s, ["get", "md", this.name, "-n", DEMO_NAMESPACE, "-o", "wide"]);
    await pollUntil(
      s,
      `only ${st.targetVersion} to serve (the replaced pods terminating)`,
      async () => {
        const pods = await kubectl.json<{ items: V1Pod[] }>(
          ["get", "pods", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${this.name},app.kubernetes.io/component=serving`],
          { signal: s.signal },
        );
        return onlyVersionServes(pods.items, st.targetVersion!) || undefined;
      },
      60_000,
    ).catch((err: Error) => this.fail(s, err.message));
    await show(s, ["get", "pods", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${this.name}`, "-o", "wide"]);
    await waitForService(`${this.serviceUrl}${SIDECAR_PATHS.ready}`, 30_000, s.signal);

    narrator.say(
      `more Gentoo birds, now served by ${st.servingVersion}; the operator observes ${(promoted as ResolvedModelDeployment).spec.promotion.observationWindows} labelled windows before the promotion is final`,
    );
    const observed = (md: ModelDeployment) => ((md.status?.loop?.observedWindows ?? 0) > 0 || md.status?.loop?.phase !== "Observing" ? md : undefined);
    const settled = (md: ModelDeployment) => (md.status?.loop?.phase !== "Observing" ? md : undefined);
    const one = await this.window(s, "Gentoo", this.nextGentoo(), observed, 30_000);
    const two = await this.window(s, "Gentoo", this.nextGentoo(), settled, 30_000);
    const final = await getModelDeployment(s, this.name);
    if (final.status?.loop?.phase !== "Stable" || final.status.servingVersion !== st.servingVersion) {
      throw new StepFailure(
        `after observation the loop is ${final.status?.loop?.phase} serving ${final.status?.servingVersion}: ${await this.loopState(s)}`,
        this.lookAt(s.dir),
      );
    }
    const before = this.timeline.filter((r) => r.traffic === "Gentoo" && r.version !== st.servingVersion).map((r) => fmt(r.accuracy));
    narrator.ok(
      `accuracy recovered: ${fmt(one.accuracy)} and ${fmt(two.accuracy)} on Gentoo birds with ${st.servingVersion} (${before.join(" and ")} with ${st.previousVersion}); ` +
        `the promotion is final (loop Stable, ${final.status.loop.message})`,
    );
    await show(s, ["get", "md", this.name, "-n", DEMO_NAMESPACE, "-o", "wide"]);
    await show(s, ["get", "jobs", "-n", DEMO_NAMESPACE, "-l", `ballast.dev/model-deployment=${this.name}`, "-o", "wide"]);
    narrator.say("the loop's Events:");
    // By uid: on a kept cluster, the Events of the previous run's ModelDeployment of the same name are still there.
    const selector = `involvedObject.kind=ModelDeployment,involvedObject.name=${this.name},involvedObject.uid=${final.metadata.uid}`;
    await show(s, ["get", "events", "-n", DEMO_NAMESPACE, "--field-selector", selector, "--sort-by=.metadata.creationTimestamp"]);
    narrator.say("the model's story as `ballast history` tells it (status, Events and Jobs; needs only get/list):");
    await showBallast(s, ["history", this.name, "-n", DEMO_NAMESPACE]);
    narrator.say(`the penguin windows, as the operator judged them (status.lastMetrics after each; version served; the loop's phase once it reacted):`);
    narrator.block(formatTimeline(this.timeline));
    const errors = this.timeline.flatMap((r) =>
      r.accuracy !== undefined && r.estimatedAccuracy !== undefined ? [Math.abs(r.estimatedAccuracy - r.accuracy)] : [],
    );
    if (errors.length)
      narrator.say(
        `the label-free estimate against the labels' accuracy over these ${errors.length} windows: mean |error| ${fmt(errors.reduce((a, b) => a + b, 0) / errors.length)}, ` +
          `max ${fmt(Math.max(...errors))} (bench/loop measures it with labels 3 windows late, where the estimate decides)`,
      );
  }

  // ---------------------------------------------------------------- shared

  private nextGentoo(): Penguin[] {
    const birds = this.split.gentoo.slice(this.gentooSent, this.gentooSent + this.windowSize);
    this.gentooSent += birds.length;
    return birds;
  }

  /**
   * Sends one window of birds, each request labelled right after its answer (so the window's labels are in
   * before the operator judges it), then waits until the operator has judged that window and, when given,
   * for the loop's reaction. Pacing by window matters: the policy judges the newest closed window at each scrape.
   */
  private async window(
    s: Session,
    traffic: string,
    birds: readonly Penguin[],
    reaction?: (md: ModelDeployment) => ModelDeployment | undefined,
    reactionTimeoutMs = 10_000,
  ): Promise<TimelineRow> {
    const n = this.timeline.length + 1;
    const sent = await sendTrafficWithFeedback({
      serviceUrl: this.serviceUrl,
      feedbackUrl: this.serviceUrl,
      model: this.model,
      days: birds,
      rowsPerRequest: ROWS_PER_REQUEST,
      idPrefix: `demo-penguins-${this.runId}-${n}`,
      features: this.features,
      label: this.label,
      feedbackPerRequest: true,
      signal: s.signal,
    });
    const afterFirstJudged = this.lastJudgedEnd;
    let md = await pollUntil(
      s,
      `the operator to judge window ${n} of ModelDeployment ${this.name}`,
      async () => {
        const m = await getModelDeployment(s, this.name);
        const end = m.status?.lastMetrics?.windowEnd;
        return end && end !== afterFirstJudged ? m : undefined;
      },
      30_000,
    ).catch((err: Error) => this.fail(s, err.message));
    if (reaction) {
      // No reaction in time is reported by the caller, with the phase the loop is in.
      md = await pollUntil(s, `the loop to react to window ${n}`, async () => reaction(await getModelDeployment(s, this.name)), reactionTimeoutMs).catch(
        (err: unknown) => {
          if (s.signal.aborted) throw err;
          return md;
        },
      );
    }
    const m = md.status!.lastMetrics!;
    this.lastJudgedEnd = m.windowEnd;
    const row: TimelineRow = {
      window: n,
      traffic,
      windowEnd: m.windowEnd,
      rows: m.samples,
      labelled: m.labelledSamples ?? 0,
      ...(m.accuracy !== undefined ? { accuracy: m.accuracy } : {}),
      ...(m.estimatedAccuracy !== undefined ? { estimatedAccuracy: m.estimatedAccuracy } : {}),
      ...(m.driftShare !== undefined ? { driftShare: m.driftShare } : {}),
      verdict: m.verdict ?? "n/a",
      version: md.status?.servingVersion ?? "?",
      phase: md.status?.loop?.phase ?? "?",
    };
    this.timeline.push(row);
    const streak = md.status?.policy?.consecutiveViolations;
    s.narrator.say(
      `window ${n}, ${traffic} birds: POST ${this.serviceUrl}/v2/models/${this.model}/infer × ${sent.requests}, right for ${sent.correct} of ${sent.rows}; ${sent.feedbackAccepted} labels, each right after its answer`,
    );
    s.narrator.say(
      `  judged: ${row.rows} rows, ${row.labelled} labelled, accuracy ${fmt(row.accuracy)} (estimated ${fmt(row.estimatedAccuracy)} without labels), drift share ${fmt(row.driftShare, 2)} → ${row.verdict}` +
        `${m.decidedBy ? ` (decided by ${m.decidedBy})` : ""}${row.verdict === "Violated" && streak ? `, ${streak} in a row` : ""}; serving ${row.version}, loop ${row.phase}`,
    );
    return row;
  }

  private async jobPods(s: Session, job: string): Promise<V1Pod[]> {
    return (await s.kubectl.json<{ items: V1Pod[] }>(["get", "pods", "-n", DEMO_NAMESPACE, "-l", `batch.kubernetes.io/job-name=${job}`], { signal: s.signal }))
      .items;
  }

  /** The loop's state in one line, for a failure message. */
  private async loopState(s: Session): Promise<string> {
    const md = await getModelDeployment(s, this.name).catch(() => undefined);
    const st = md?.status;
    if (!st) return "no status";
    const conditions = (st.conditions ?? []).filter((c) => ["Degraded", "Retraining", "CandidateReady", "LoopHalted"].includes(c.type));
    return [
      `status.loop ${JSON.stringify(st.loop)}`,
      `status.policy ${JSON.stringify(st.policy)}`,
      `status.lastMetrics ${JSON.stringify(st.lastMetrics)}`,
      ...(st.lastRetraining ? [`status.lastRetraining ${JSON.stringify(st.lastRetraining)}`] : []),
      ...conditions.map((c) => `${c.type}=${c.status} (${c.reason}): ${c.message}`),
    ].join("\n");
  }

  private async fail(s: Session, message: string, job?: string): Promise<never> {
    if (s.signal.aborted) throw s.signal.reason;
    const jobLogs = job ? podLogFiles(s.dir, DEMO_NAMESPACE, `${job}-`) : [];
    throw new StepFailure(`${message}\n${await this.loopState(s)}`, [...jobLogs, ...this.lookAt(s.dir)]);
  }

  /** The logs that explain a failure of the loop's steps: the operator's, the Jobs', the serving pods'. */
  lookAt(dir: string): string[] {
    return [
      ...podLogFiles(dir, OPERATOR_NAMESPACE, `${OPERATOR_DEPLOYMENT}-`),
      ...podLogFiles(dir, DEMO_NAMESPACE, `${this.name}-retrain-`),
      ...podLogFiles(dir, DEMO_NAMESPACE, `${this.name}-serving-`),
      join(dir, "logs/local-nodes.log"),
    ];
  }
}

/** The Job pod's result as `ballast train` wrote it to its termination message. */
function trainReport(pod: V1Pod): TrainSuccess | undefined {
  const message = pod.status?.containerStatuses?.[0]?.state?.terminated?.message;
  if (!message) return undefined;
  try {
    const result = parseTrainResult(message);
    return isTrainFailure(result) ? undefined : result;
  } catch {
    return undefined;
  }
}

export function formatTimeline(rows: readonly TimelineRow[]): string {
  const header = ["WINDOW", "ENDED (UTC)", "BIRDS", "ROWS", "LABELLED", "ACCURACY", "ESTIMATED", "|ERROR|", "DRIFT", "VERDICT", "VERSION", "LOOP PHASE"];
  const cells = rows.map((r) => [
    String(r.window),
    r.windowEnd.slice(11, 19),
    r.traffic,
    String(r.rows),
    String(r.labelled),
    fmt(r.accuracy),
    fmt(r.estimatedAccuracy),
    r.accuracy !== undefined && r.estimatedAccuracy !== undefined ? fmt(Math.abs(r.estimatedAccuracy - r.accuracy)) : "n/a",
    fmt(r.driftShare, 2),
    r.verdict,
    r.version,
    r.phase,
  ]);
  return table(header, cells);
}
