// The operator's monitoring.json steers the sidecar: drift method and threshold, the features judged, the reference.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { postJson, startBallast, startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess | undefined;

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2, holdoutRows: 60, newYorkRows: 60 });
  server = await startModelServer(fx.storeDir);
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

function writeConfig(name: string, config: object): string {
  const file = path.join(fx.dir, name);
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

describe("ballast sidecar --monitoring-config", () => {
  it("judges only the configured features with the configured method and threshold", async () => {
    const config = writeConfig("monitoring.json", {
      features: [
        { name: "temp_min", type: "numeric" },
        { name: "wind", type: "numeric" },
      ],
      labelField: "weather",
      task: "classification",
      drift: { method: "psi", threshold: 0.2 },
      window: { size: 60 },
    });
    sidecar = await startSidecar(server.url, fx.storeDir, path.join(fx.dir, "log"), [
      "--monitoring-config",
      config,
      "--window-size",
      "60",
      "--window-duration",
      "0",
    ]);
    for (let i = 0; i < 60; i += 10)
      expect((await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(fx.newYork.slice(i, i + 10)))).status).toBe(200);
    const summary = (await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary;
    const drift = summary.windows[0]!.drift!;
    expect(drift.features.map((f) => [f.name, f.method, f.threshold])).toEqual([
      ["temp_min", "psi", 0.2],
      ["wind", "psi", 0.2],
    ]);
    expect(drift.prediction[0]!.method).toBe("psi");
    await sidecar.stop();
    sidecar = undefined;
  });

  it("refuses a malformed config at start with exit code 2, and names a feature the model lacks while not ready", async () => {
    const bad = writeConfig("bad.json", { drift: { method: "psi", threshold: -1 } });
    const proc = await startBallast([
      "sidecar",
      "--upstream",
      server.url,
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--data-dir",
      path.join(fx.dir, "log2"),
      "--monitoring-config",
      bad,
    ]).catch((err: Error) => err);
    expect(proc).toBeInstanceOf(Error);
    expect((proc as Error).message).toMatch(/exited with 2[\s\S]*monitoring config .*bad.json: \/drift\/threshold/);

    const unknown = writeConfig("unknown.json", { features: [{ name: "humidity" }] });
    sidecar = await startBallast([
      "sidecar",
      "--upstream",
      server.url,
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--data-dir",
      path.join(fx.dir, "log3"),
      "--monitoring-config",
      unknown,
    ]);
    let body = "";
    for (let i = 0; i < 100 && !body.includes("humidity"); i++) {
      const res = await fetch(`${sidecar.url}/v1/sidecar/ready`);
      expect(res.status).toBe(503);
      body = await res.text();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toContain("monitoring config features: humidity not among the model's inputs");
  });
});
