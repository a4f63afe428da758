#!/usr/bin/env python3
"""bench/drift Python side: generates the shared data set and times the baselines on it.

  baselines.py generate DIR    write the data (raw little-endian columns + meta.json) into DIR
  baselines.py scipy DIR       plain scipy: the statistics Ballast's `auto` picks (normed Wasserstein, JS)
  baselines.py evidently DIR   Evidently's DataDriftPreset report
  baselines.py summary DIR     print the comparison table from DIR/*.json
"""
import json
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
    start = time.perf_counter()
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
    seconds = time.perf_counter() - start
    return {"tool": "scipy", "seconds": seconds, "drifted": sorted(drifted)}


def run_evidently(d: pathlib.Path) -> dict:
    import evidently
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report

    meta, ref, cur = load(d)
    start = time.perf_counter()
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur)
    result = report.as_dict()
    seconds = time.perf_counter() - start
    table = next(m["result"] for m in result["metrics"] if "drift_by_columns" in m["result"])
    drifted = sorted(name for name, col in table["drift_by_columns"].items() if col["drift_detected"])
    methods = sorted({col["stattest_name"] for col in table["drift_by_columns"].values()})
    return {"tool": f"evidently {evidently.__version__}", "seconds": seconds, "drifted": drifted, "methods": methods}


def summary(d: pathlib.Path) -> None:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("result-*.json"))}
    ballast = results.get("result-ballast", {})
    rows = [("Ballast sketch (profile + compare)", ballast.get("sketchSeconds")),
            ("Ballast sketch, compare stored profiles", ballast.get("sketchCompareSeconds")),
            ("Ballast exact (profile + compare)", ballast.get("exactSeconds")),
            ("plain scipy (same statistics)", results.get("result-scipy", {}).get("seconds")),
            (results.get("result-evidently", {}).get("tool", "evidently") + " DataDriftPreset", results.get("result-evidently", {}).get("seconds"))]
    evid = results.get("result-evidently", {}).get("seconds")
    sketch = ballast.get("sketchSeconds")
    print(f"\n1M reference x 100k current rows, {N_NUM} numeric + {N_CAT} categorical features\n")
    print(f"{'run':48} {'seconds':>9} {'vs Ballast sketch':>18}")
    for name, secs in rows:
        ratio = f"{secs / sketch:.3g}x" if secs and sketch else "-"
        print(f"{name:48} {secs if secs is not None else float('nan'):9.2f} {ratio:>18}")
    if evid and sketch:
        print(f"\nEvidently / Ballast sketch = {evid / sketch:.1f}x (goal >= 10x)")
    if ballast:
        print(f"sketch ingest: {ballast['ingestValuesPerSecond'] / 1e6:.1f} M values/s on one core")
        print(f"bytes per numeric profile (JSON, 1M values): {ballast['bytesPerNumericProfile']} (max {ballast['maxBytesPerNumericProfile']}), goal <= 4096")
        print(f"bytes per categorical profile (JSON): {ballast['bytesPerCategoricalProfile']}")
    for key, res in results.items():
        if "drifted" in res:
            print(f"{key[7:]:>10} drifted: {', '.join(res['drifted'])}" + (f" (methods: {', '.join(res['methods'])})" if "methods" in res else ""))
        for mode in ("exactDrifted", "sketchDrifted"):
            if mode in res:
                print(f"{'ballast ' + mode[:-7]:>10} drifted: {', '.join(res[mode])}")
    if "error" in results.get("result-evidently", {}):
        print(f"evidently: {results['result-evidently']['error']}")


if __name__ == "__main__":
    command, directory = sys.argv[1], pathlib.Path(sys.argv[2])
    if command == "generate":
        generate(directory)
    elif command == "summary":
        summary(directory)
    else:
        result = run_scipy(directory) if command == "scipy" else run_evidently(directory)
        (directory / f"result-{command}.json").write_text(json.dumps(result))
        print(json.dumps(result))
