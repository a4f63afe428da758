#!/usr/bin/env python3
"""bench/drift Python side: generates the shared data set and times the baselines on it.

  baselines.py generate DIR    write the data (raw little-endian columns + meta.json) into DIR
  baselines.py scipy DIR       plain scipy: the statistics Ballast's `auto` picks (normed Wasserstein, JS)
  baselines.py evidently DIR   Evidently's DataDriftPreset report, with the API of the installed release
                               (0.4.x: evidently.report; 0.7.x: Report([DataDriftPreset()]).run(...).dict())
  baselines.py nannyml DIR     NannyML's UnivariateDriftCalculator (Wasserstein, Jensen-Shannon)
  baselines.py summary DIR     print the comparison table from DIR/*.json

Each peer runs in its own venv (bench/drift/requirements-*.txt): Evidently 0.4 and 0.7 cannot share one.
"""
import json
import os
import pathlib
import sys
import time

import numpy as np

N_REF, N_CUR = 1_000_000, 100_000
N_NUM, N_CAT = 20, 5
LABELS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def generate(out: pathlib.Path) -> None:
    rng = np.random.default_rng(20261126)
    out.mkdir(parents=True, exist_ok=True)
    numeric, categorical = [f"num_{i:02d}" for i in range(N_NUM)], [f"cat_{i}" for i in range(N_CAT)]
    for part, n, drifted in (("ref", N_REF, False), ("cur", N_CUR, True)):
        cols = []
        for i in range(N_NUM):
            loc, scale = i * 0.5, 1 + i * 0.1
            # Features 0-5 drift in the current window: mean shifts of 0.3–0.8 reference std.
            if drifted and i < 6:
                loc += (0.3 + 0.1 * i) * scale
            kind = i % 3
            x = rng.normal(loc, scale, n) if kind == 0 else rng.gamma(2.0, scale, n) + loc if kind == 1 else rng.uniform(loc - 2 * scale, loc + 2 * scale, n)
            cols.append(x.astype("<f8"))
        np.stack(cols).tofile(out / f"{part}_num.f64")
        cats = []
        for i in range(N_CAT):
            p = np.linspace(1, 2, len(LABELS)) ** (i + 1)
            if drifted and i < 2:
                p = p[::-1]  # Categorical features 0-1 drift: the frequency order flips.
            cats.append(rng.choice(len(LABELS), size=n, p=p / p.sum()).astype("u1"))
        np.stack(cats).tofile(out / f"{part}_cat.u8")
    (out / "meta.json").write_text(json.dumps({"nRef": N_REF, "nCur": N_CUR, "numeric": numeric, "categorical": categorical, "labels": LABELS}))


def load(d: pathlib.Path):
    meta = json.loads((d / "meta.json").read_text())
    import pandas as pd

    frames = {}
    for part, n in (("ref", meta["nRef"]), ("cur", meta["nCur"])):
        num = np.fromfile(d / f"{part}_num.f64", dtype="<f8").reshape(len(meta["numeric"]), n)
        cat = np.fromfile(d / f"{part}_cat.u8", dtype="u1").reshape(len(meta["categorical"]), n)
        labels = np.array(meta["labels"], dtype=object)
        data = {name: num[i] for i, name in enumerate(meta["numeric"])}
        data.update({name: labels[cat[i]] for i, name in enumerate(meta["categorical"])})
        frames[part] = pd.DataFrame(data)
    return meta, frames["ref"], frames["cur"]


def run_scipy(d: pathlib.Path) -> dict:
    from scipy import stats
    from scipy.spatial import distance

    meta, ref, cur = load(d)
    start, cpu = time.perf_counter(), time.process_time()
    drifted = []
    for name in meta["numeric"]:
        r, c = ref[name].to_numpy(), cur[name].to_numpy()
        if stats.wasserstein_distance(r, c) / max(np.std(r), 0.001) >= 0.1:
            drifted.append(name)
    for name in meta["categorical"]:
        keys = sorted(set(ref[name].unique()) | set(cur[name].unique()))
        rc, cc = ref[name].value_counts(), cur[name].value_counts()
        p = np.array([rc.get(k, 0) for k in keys], dtype=float)
        q = np.array([cc.get(k, 0) for k in keys], dtype=float)
        if distance.jensenshannon(p / p.sum(), q / q.sum(), base=2) >= 0.1:
            drifted.append(name)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"tool": "scipy", "seconds": seconds, "cpuSeconds": cpu, "drifted": sorted(drifted)}


def run_evidently(d: pathlib.Path) -> dict:
    import evidently

    meta, ref, cur = load(d)
    legacy = evidently.__version__.startswith("0.4.")
    start, cpu = time.perf_counter(), time.process_time()
    if legacy:
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=ref, current_data=cur)
        result = report.as_dict()
    else:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        result = Report([DataDriftPreset()]).run(cur, ref).dict()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    drifted, methods = evidently_legacy_drift(result) if legacy else evidently_drift(result, meta)
    return {"tool": f"evidently {evidently.__version__}", "seconds": seconds, "cpuSeconds": cpu, "drifted": drifted, "methods": methods}


def evidently_legacy_drift(result: dict) -> tuple[list, list]:
    table = next(m["result"] for m in result["metrics"] if "drift_by_columns" in m["result"])
    drifted = sorted(name for name, col in table["drift_by_columns"].items() if col["drift_detected"])
    return drifted, sorted({col["stattest_name"] for col in table["drift_by_columns"].values()})


def evidently_drift(result: dict, meta: dict) -> tuple[list, list]:
    """0.7's dict has one ValueDrift metric per column: its value (a p-value or a distance) and its threshold."""
    drifted, methods = [], set()
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").split(":")[-1] != "ValueDrift":
            continue
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        methods.add(method)
        # p-value tests flag a value below the threshold, distances one at or above it (Evidently's own rule).
        if value < threshold if "p_value" in method else value >= threshold:
            drifted.append(config["column"])
    return sorted(drifted), sorted(methods)


def run_nannyml(d: pathlib.Path) -> dict:
    import nannyml

    meta, ref, cur = load(d)
    start, cpu = time.perf_counter(), time.process_time()
    # The same statistics as Ballast's auto: Wasserstein for numeric, Jensen-Shannon for categorical. NannyML
    # thresholds each from the spread over reference chunks, so the reference is cut into chunks of the
    # current window's size and the current window is one chunk.
    calc = nannyml.UnivariateDriftCalculator(
        column_names=meta["numeric"] + meta["categorical"],
        continuous_methods=["wasserstein"],
        categorical_methods=["jensen_shannon"],
        chunk_size=meta["nCur"],
    )
    calc.fit(ref)
    result = calc.calculate(cur).filter(period="analysis")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    frame = result.to_df()
    drifted = sorted(
        {column for column, method in frame.columns.droplevel(2).unique() if (column, method, "alert") in frame.columns and frame[(column, method, "alert")].any()}
    )
    return {"tool": f"nannyml {nannyml.__version__}", "seconds": seconds, "cpuSeconds": cpu, "drifted": drifted, "methods": ["wasserstein", "jensen_shannon"]}


PEERS = ("evidently-0.4", "evidently-0.7", "nannyml")


def summary(d: pathlib.Path) -> None:
    results = {p.stem[len("result-"):]: json.loads(p.read_text()) for p in sorted(d.glob("result-*.json"))}
    ballast = results.get("ballast", {})
    sketch = ballast.get("sketchSeconds")
    parallel = ballast.get("parallelSeconds")
    threads = ballast.get("threads")
    rows = [("Ballast sketch (profile + compare)", ballast.get("sketchSeconds")),
            (f"Ballast sketch, {threads} threads", parallel),
            ("Ballast sketch, compare stored profiles", ballast.get("sketchCompareSeconds")),
            ("Ballast exact (profile + compare)", ballast.get("exactSeconds")),
            ("plain scipy (same statistics)", results.get("scipy", {}).get("seconds"))]
    rows += [(results.get(peer, {}).get("tool", peer) + (" UnivariateDriftCalculator" if peer == "nannyml" else " DataDriftPreset"),
              results.get(peer, {}).get("seconds")) for peer in PEERS]
    print(f"\n1M reference x 100k current rows, {N_NUM} numeric + {N_CAT} categorical features\n")
    print(f"{'run':48} {'seconds':>9} {'vs Ballast sketch':>18} {'CPU s':>8} {'CPU vs sketch':>14}")
    cpus = [ballast.get("sketchCpuSeconds"), None, None, None, results.get("scipy", {}).get("cpuSeconds")]
    cpus += [results.get(peer, {}).get("cpuSeconds") for peer in PEERS]
    sketch_cpu = ballast.get("sketchCpuSeconds")
    for (name, secs), cpu in zip(rows, cpus):
        ratio = f"{secs / sketch:.3g}x" if secs and sketch else "-"
        cpu_ratio = f"{cpu / sketch_cpu:.3g}x" if cpu and sketch_cpu else "-"
        print(f"{name:48} {secs if secs is not None else float('nan'):9.2f} {ratio:>18} {cpu if cpu is not None else float('nan'):8.2f} {cpu_ratio:>14}")
    print()
    reference = ballast.get("sketchDrifted")
    for peer in PEERS:
        res = results.get(peer, {})
        for label, secs in (("Ballast sketch", sketch), (f"Ballast sketch {threads} threads", parallel)):
            if res.get("seconds") and secs:
                verdict = "met" if res["seconds"] / secs >= 10 else "not met"
                print(f"{res['tool']} / {label} = {res['seconds'] / secs:.1f}x (goal >= 10x: {verdict})")
        if res.get("cpuSeconds") and ballast.get("sketchCpuSeconds"):
            print(f"  CPU seconds: {res['tool']} / Ballast sketch (one thread) = {res['cpuSeconds'] / ballast['sketchCpuSeconds']:.1f}x")
        if "error" in res:
            print(f"{peer}: {res['error']}")
    if sketch and ballast.get("referenceRows"):
        per_million = lambda secs: secs / (ballast["referenceRows"] / 1e6)
        best = min(s for s in (sketch, parallel) if s)
        print(f"profile + compare per million reference rows: {per_million(sketch):.3f} s one thread, "
              f"{per_million(parallel):.3f} s {threads} threads (goal < 1 s: {'met' if per_million(best) < 1 else 'not met'})")
    if ballast:
        print(f"sketch ingest: {ballast['ingestValuesPerSecond'] / 1e6:.1f} M values/s on one core")
        print(f"bytes per numeric profile (JSON, 1M values): {ballast['bytesPerNumericProfile']} (max {ballast['maxBytesPerNumericProfile']}), goal <= 4096")
        print(f"bytes per categorical profile (JSON): {ballast['bytesPerCategoricalProfile']}")
    drifted = {"ballast sketch": reference, "ballast exact": ballast.get("exactDrifted")}
    drifted.update({results[k].get("tool", k): results[k]["drifted"] for k in ("scipy", *PEERS) if "drifted" in results.get(k, {})})
    for name, cols in drifted.items():
        if cols is None:
            continue
        methods = next((r["methods"] for r in results.values() if r.get("tool") == name and "methods" in r), None)
        agree = "same as Ballast sketch" if cols == reference else "DIFFERS from Ballast sketch"
        print(f"{name:>18} drifted: {', '.join(cols)} ({agree})" + (f" (methods: {', '.join(methods)})" if methods else ""))
    load_start = (d / "load-start.txt").read_text().split()[:3] if (d / "load-start.txt").exists() else ["?"] * 3
    print(f"load average at start {' '.join(load_start)}, at end {' '.join(pathlib.Path('/proc/loadavg').read_text().split()[:3])} ({len(os.sched_getaffinity(0))} cores)")


if __name__ == "__main__":
    command, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    if command == "generate":
        generate(directory)
    elif command == "summary":
        summary(directory)
    else:
        result = {"scipy": run_scipy, "evidently": run_evidently, "nannyml": run_nannyml}[command](directory)
        # Named by tool and minor release, so the two Evidently venvs do not overwrite each other's result.
        name = command if command != "evidently" else "evidently-" + ".".join(result["tool"].split()[1].split(".")[:2])
        (directory / f"result-{name}.json").write_text(json.dumps(result))
        print(json.dumps(result))
