// `ballast serve|sidecar|train --help` documents every flag; bad flags exit 2 with a message naming the flag.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ballastBin } from "../runtime/local-processes.js";

const run = (args: string[]) => spawnSync(ballastBin, args, { encoding: "utf8" });

describe("runtime commands on the command line", () => {
  it.each([
    [
      "serve",
      [
        "--store",
        "--model",
        "--version",
        "--host",
        "--port",
        "--backend",
        "--pvc-mount-root",
        "--max-body-bytes",
        "--max-batch-rows",
        "--drain-timeout",
        "--socket",
        "--health-port",
        "--shutdown-delay",
      ],
    ],
    [
      "sidecar",
      [
        "--upstream",
        "--store",
        "--model",
        "--data-dir",
        "--window-size",
        "--window-duration",
        "--windows-kept",
        "--max-tracked-requests",
        "--log-segment-bytes",
        "--log-max-bytes",
        "--upstream-timeout",
        "--monitoring-port",
        "--feedback-token-file",
        "--shutdown-delay",
      ],
    ],
    [
      "train",
      ["--data", "--label", "--task", "--features", "--from-version", "--epochs", "--holdout", "--seed", "--hidden", "--data-format", "--max-feedback-rows"],
    ],
  ])("ballast %s --help lists its flags", (command, flags) => {
    const res = run([command, "--help"]);
    expect(res.status).toBe(0);
    for (const flag of flags) expect(res.stdout).toContain(flag);
  });

  it.each([
    [["serve", "--store", "/tmp/x", "--model", "m", "--port", "http"], "--port must be an integer from 0 to 65535"],
    [["serve", "--model", "m"], "required option '--store <uri>' not specified"],
    [["serve", "--store", "/tmp/x", "--model", "m", "--backend", "gpu"], "Allowed choices are auto, tensorflow, wasm, cpu"],
    [
      ["sidecar", "--upstream", "ftp://x", "--store", "/tmp/x", "--model", "m", "--data-dir", "/tmp/y"],
      "--upstream must be http://<host>:<port> or unix:/<socket path>",
    ],
    [
      ["sidecar", "--upstream", "unix:relative.sock", "--store", "/tmp/x", "--model", "m", "--data-dir", "/tmp/y"],
      "--upstream must be http://<host>:<port> or unix:/<socket path>",
    ],
    [
      [
        "sidecar",
        "--upstream",
        "http://127.0.0.1:1",
        "--store",
        "/tmp/x",
        "--model",
        "m",
        "--data-dir",
        "/tmp/y",
        "--port",
        "9100",
        "--monitoring-port",
        "9100",
      ],
      "--monitoring-port must differ from --port",
    ],
    [["serve", "--store", "/tmp/x", "--model", "m", "--socket", "/tmp/h1-x.sock", "--port", "8080"], "give --port or --socket, not both"],
    [["serve", "--store", "/tmp/x", "--model", "m", "--health-port", "9000"], "--health-port goes with --socket"],
    [
      ["sidecar", "--upstream", "http://127.0.0.1:1", "--store", "/tmp/x", "--model", "m", "--data-dir", "/tmp/y", "--window-duration", "soon"],
      "--window-duration must be a duration like 500ms",
    ],
    [["train", "--data", "x.csv", "--store", "/tmp/x", "--model", "m", "--epochs", "0"], "--epochs must be an integer from 1 to 10000"],
    [["train", "--data", "x.csv", "--store", "/tmp/x", "--model", "m", "--hidden", "8,wide"], '--hidden: "wide" is not a layer width'],
  ])("exits 2 on %j", (args, message) => {
    const res = run(args);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(message);
  });
});
