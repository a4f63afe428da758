#!/usr/bin/env python3
"""Regenerates test/oracle/fixtures/*.json from scipy/numpy (versions pinned in requirements.txt).

Run: test/oracle/regenerate.sh  (makes a venv in ${XDG_CACHE_HOME:-~/.cache}/ballast/venv-oracle).
Data comes from a small integer LCG so every value is exactly representable and tests can print it.
"""
import json
import pathlib

import numpy as np
import scipy
from scipy import optimize, special, stats
from scipy.spatial import distance
import sklearn
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

OUT = pathlib.Path(__file__).parent / "fixtures"


class Lcg:
    """Park–Miller minimal standard generator: deterministic fixtures without depending on numpy's RNG streams."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 48271) % 2147483647
        return self.state

    def uniform(self, n, lo, hi, step):
        """n values on the grid lo + k*step in [lo, hi): ties happen when the grid is coarse."""
        count = int(round((hi - lo) / step))
        return [lo + (self.next() % count) * step for _ in range(n)]

    def bell(self, n, center, spread, step):
        """Sum of four uniforms: a bell-shaped sample on a grid."""
        count = int(round(spread / step))
        return [center + ((sum(self.next() % count for _ in range(4)) / 4) - count / 2) * step for _ in range(n)]


def f(x):
    return float(x)


def ks_cases():
    rng = Lcg(12345)
    cases = [
        ("scipy doc: [0.99,1.99] vs [1,2,3]", [0.99, 1.99], [1, 2, 3], "auto"),
        ("scipy doc: [1.01,2.01] vs [1,2,3]", [1.01, 2.01], [1, 2, 3], "auto"),
        ("scipy test: linspace shift", list(np.linspace(1, 100, 100)), list(np.linspace(1, 100, 110) + 20.1), "auto"),
        ("scipy test: ties", [2] * 3 + [3] * 4 + [5] * 5 + [6] * 4, [3] * 3 + [4] * 4 + [6] * 5 + [7] * 4, "auto"),
        ("tiny: one value each", [1.0], [2.0], "auto"),
        ("tiny: one vs three", [0.5], [0.1, 0.7, 0.9], "auto"),
        ("tiny: equal samples", [1, 2, 3], [1, 2, 3], "auto"),
        ("constant: same constant", [4.0] * 20, [4.0] * 30, "auto"),
        ("constant: different constants", [4.0] * 20, [5.0] * 30, "auto"),
        ("constant vs spread", [4.0] * 40, rng.uniform(25, 0, 8, 0.5), "auto"),
        ("equal sizes no drift", rng.bell(200, 0, 10, 0.01), rng.bell(200, 0, 10, 0.01), "auto"),
        ("equal sizes shift", rng.bell(200, 0, 10, 0.01), rng.bell(200, 0.8, 10, 0.01), "auto"),
        ("unequal sizes no drift", rng.bell(300, 5, 6, 0.001), rng.bell(170, 5, 6, 0.001), "auto"),
        ("unequal sizes scale change", rng.bell(300, 5, 6, 0.001), rng.bell(170, 5, 9, 0.001), "auto"),
        ("heavy ties coarse grid", rng.uniform(150, 0, 5, 1), rng.uniform(90, 0, 6, 1), "auto"),
        ("coprime sizes", rng.bell(97, 0, 4, 0.001), rng.bell(89, 0.3, 4, 0.001), "auto"),
        ("exact at the 10000 boundary scale", rng.bell(1000, 0, 10, 0.0001), rng.bell(750, 0.1, 10, 0.0001), "auto"),
        ("asymp forced, small", rng.bell(60, 0, 3, 0.01), rng.bell(45, 0.5, 3, 0.01), "asymp"),
        ("asymp forced, medium no drift", rng.bell(2000, 0, 3, 0.0001), rng.bell(1500, 0, 3, 0.0001), "asymp"),
        ("asymp forced, medium drift", rng.bell(2000, 0, 3, 0.0001), rng.bell(1500, 0.1, 3, 0.0001), "asymp"),
        ("asymp forced, odd equal sizes (en is x.5)", rng.bell(301, 0, 3, 0.001), rng.bell(301, 0.2, 3, 0.001), "asymp"),
        ("exact forced, large equal", rng.bell(3000, 0, 3, 0.0001), rng.bell(3000, 0.05, 3, 0.0001), "exact"),
    ]
    out = []
    for name, a, b, method in cases:
        res = stats.ks_2samp(a, b, method=method)
        out.append({"name": name, "a": [f(x) for x in a], "b": [f(x) for x in b], "method": method,
                    "statistic": f(res.statistic), "pValue": f(res.pvalue)})
    return out


def kstwo_cases():
    # Every branch of scipy's kolmogn survival function: Ruben–Gambino ends, Durbin, Pomeranz, Pelz–Good, Smirnov.
    grid = [
        (5, 0.15), (5, 0.3), (5, 0.5), (5, 0.85), (10, 0.2), (10, 0.35), (50, 0.05), (50, 0.1), (50, 0.2), (50, 0.35),
        (140, 0.05), (140, 0.12), (140, 0.25), (141, 0.05), (141, 0.12), (141, 0.2), (500, 0.02), (500, 0.05), (500, 0.08),
        (1000, 0.01), (1000, 0.03), (1000, 0.05), (5000, 0.004), (5000, 0.012), (5000, 0.03), (90909, 0.0006),
        (90909, 0.003), (90909, 0.005), (90909, 0.008), (200000, 0.002), (200000, 0.0045),
    ]
    return [{"n": n, "x": x, "sf": f(stats.kstwo.sf(x, n))} for n, x in grid]


def chi2_cases():
    cases = [
        ("2x2", [[30, 70], [45, 55]]),
        ("three categories no drift", [[100, 200, 300], [11, 19, 31]]),
        ("three categories drift", [[100, 200, 300], [60, 20, 25]]),
        ("unseen category in current", [[50, 50, 0], [40, 45, 15]]),
        ("category gone in current", [[50, 30, 20], [60, 40, 0]]),
        ("tiny samples", [[1, 2], [2, 1]]),
        ("many categories", [[5 + (i * 7) % 13 for i in range(30)], [4 + (i * 5) % 11 for i in range(30)]]),
        ("large counts small shift", [[100000, 200000, 300000, 400000], [10150, 19900, 30050, 39900]]),
        ("extreme shift (tiny p)", [[1000, 0, 10], [0, 1000, 10]]),
    ]
    out = []
    for name, table in cases:
        res = stats.chi2_contingency(np.array(table, dtype=float), correction=False)
        out.append({"name": name, "table": table, "statistic": f(res.statistic), "pValue": f(res.pvalue), "dof": int(res.dof)})
    sf = [{"x": x, "dof": k, "sf": f(stats.chi2.sf(x, k))} for x, k in [(0.5, 1), (3.84, 1), (10, 3), (50, 10), (200, 29), (1e-3, 2), (2500, 5)]]
    return {"contingency": out, "sf": sf}


def js_cases():
    cases = [
        ("disjoint", [1, 0, 0], [0, 1, 0]),
        ("scipy doc natural log", [1, 0], [0.5, 0.5]),
        ("identical", [0.2, 0.3, 0.5], [0.2, 0.3, 0.5]),
        ("counts not normalised", [10, 20, 30, 40], [15, 25, 25, 35]),
        ("zero in one side", [5, 0, 5], [3, 4, 3]),
        ("many bins", [1 + (i * 3) % 7 for i in range(25)], [1 + (i * 5) % 9 for i in range(25)]),
    ]
    out = []
    for name, p, q in cases:
        base = np.e if "natural" in name else 2
        out.append({"name": name, "p": p, "q": q, "base": "e" if base == np.e else 2, "distance": f(distance.jensenshannon(p, q, base=base))})
    return out


def evidently_psi(ref_pct, cur_pct):
    ref_pct, cur_pct = np.array(ref_pct, dtype=float), np.array(cur_pct, dtype=float)
    for arr in (ref_pct, cur_pct):
        nz = arr[arr != 0]
        fill = nz.min() / 10**6 if nz.min() <= 0.0001 else 0.0001
        np.place(arr, arr == 0, fill)
    return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))


def binned_shares(ref, cur):
    """Evidently's get_binned_data: Sturges bins over ref ∪ cur for > 20 distinct reference values, else per value."""
    ref, cur = np.array(ref, dtype=float), np.array(cur, dtype=float)
    if len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur), [f(e) for e in edges]
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    return (np.array([np.sum(ref == k) for k in keys]) / len(ref), np.array([np.sum(cur == k) for k in keys]) / len(cur), None)


def drift_cases():
    """Whole-feature results as compare() computes them in exact mode, for numeric and categorical columns."""
    rng = Lcg(777)
    numeric = [
        ("no drift", rng.bell(800, 0, 10, 0.001), rng.bell(600, 0, 10, 0.001)),
        ("mean shift", rng.bell(800, 0, 10, 0.001), rng.bell(600, 1.5, 10, 0.001)),
        ("scale change", rng.bell(1200, 3, 4, 0.001), rng.bell(900, 3, 7, 0.001)),
        ("discrete values (≤ 20 distinct)", rng.uniform(500, 0, 8, 1), rng.uniform(400, 1, 9, 1)),
        ("constant reference", [2.5] * 50, rng.bell(40, 2.5, 1, 0.01)),
        ("both constant, same value", [7.0] * 30, [7.0] * 25),
        ("tiny samples", [1.0, 2.0, 3.5], [2.0, 4.0]),
        ("values outside reference range", rng.bell(500, 0, 2, 0.001), rng.bell(300, 5, 2, 0.001)),
    ]
    out = []
    for name, ref, cur in numeric:
        r, c, edges = binned_shares(ref, cur)
        wd = stats.wasserstein_distance(ref, cur)
        out.append({
            "name": name, "type": "numeric", "reference": [f(x) for x in ref], "current": [f(x) for x in cur],
            "edges": edges,
            "psi": evidently_psi(r, c),
            "jensenshannon": f(distance.jensenshannon(r, c, base=2)),
            "wassersteinRaw": f(wd),
            "wasserstein": f(wd / max(np.std(ref), 0.001)),
            "ks": {"statistic": f(stats.ks_2samp(ref, cur).statistic), "pValue": f(stats.ks_2samp(ref, cur).pvalue)},
        })
    categorical = [
        ("no drift", ["a"] * 50 + ["b"] * 30 + ["c"] * 20, ["a"] * 26 + ["b"] * 14 + ["c"] * 10),
        ("shifted shares", ["a"] * 50 + ["b"] * 30 + ["c"] * 20, ["a"] * 10 + ["b"] * 20 + ["c"] * 30),
        ("unseen category", ["a"] * 60 + ["b"] * 40, ["a"] * 30 + ["b"] * 20 + ["z"] * 25),
        ("category disappears", ["a"] * 60 + ["b"] * 30 + ["c"] * 10, ["a"] * 70 + ["b"] * 30),
        ("single category both", ["x"] * 40, ["x"] * 10),
        ("binary", ["yes"] * 120 + ["no"] * 80, ["yes"] * 40 + ["no"] * 60),
    ]
    for name, ref, cur in categorical:
        keys = list(dict.fromkeys(ref + cur))
        rc = np.array([ref.count(k) for k in keys], dtype=float)
        cc = np.array([cur.count(k) for k in keys], dtype=float)
        chi = stats.chi2_contingency(np.array([rc, cc]), correction=False) if len(keys) > 1 else None
        out.append({
            "name": name, "type": "categorical", "reference": ref, "current": cur,
            "psi": evidently_psi(rc / rc.sum(), cc / cc.sum()),
            "jensenshannon": f(distance.jensenshannon(rc / rc.sum(), cc / cc.sum(), base=2)),
            "chisquare": {"statistic": f(chi.statistic) if chi else 0.0, "pValue": f(chi.pvalue) if chi else 1.0},
        })
    return out


def wasserstein_cases():
    rng = Lcg(4242)
    cases = [
        ("scipy doc", [0, 1, 3], [5, 6, 8]),
        ("identical", [1, 2, 3], [1, 2, 3]),
        ("single points", [0.0], [2.5]),
        ("ties", [1, 1, 1, 2, 2, 5], [1, 2, 2, 2, 6]),
        ("bell samples", rng.bell(400, 0, 5, 0.001), rng.bell(300, 0.7, 5, 0.001)),
        ("constant vs spread", [3.0] * 10, rng.uniform(30, 0, 6, 0.25)),
    ]
    return [{"name": n, "u": [f(x) for x in u], "v": [f(x) for x in v], "distance": f(stats.wasserstein_distance(u, v)),
             "normed": f(stats.wasserstein_distance(u, v) / max(np.std(u), 0.001))} for n, u, v in cases]


def ece_top_label(probs, labels, bins=15):
    """Top-label expected calibration error, equal-width bins (b/M, (b+1)/M] (Guo et al. 2017)."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += abs(correct[mask].sum() - conf[mask].sum()) / len(labels)
    return ece


def temperature_cases():
    """Temperature scaling: scipy's bounded minimiser of the log-loss over log T is the reference fit."""
    rng = Lcg(777)

    def case(name, rows, classes, spread, true_temperature):
        # Logits on a grid; true classes drawn from softmax(logits / true_temperature), so the raw softmax is
        # over-confident when true_temperature > 1 and under-confident below 1.
        logits = np.array([[(rng.next() % 2001 - 1000) / 1000 * spread for _ in range(classes)] for _ in range(rows)])
        probs = special.softmax(logits, axis=1)
        truth = special.softmax(logits / true_temperature, axis=1)
        labels = np.array([int(np.searchsorted(np.cumsum(row), (rng.next() % 100000) / 100000, side="right")) for row in truth])
        labels = np.minimum(labels, classes - 1)
        log_p = np.log(np.maximum(probs, 1e-12))

        def loss(log_t):
            return -special.log_softmax(log_p / np.exp(log_t), axis=1)[np.arange(rows), labels].mean()

        fit = optimize.minimize_scalar(loss, bounds=(np.log(0.05), np.log(20)), method="bounded", options={"xatol": 1e-10})
        t = float(np.exp(fit.x))
        calibrated = special.softmax(log_p / t, axis=1)
        return {
            "name": name,
            "classes": classes,
            "probabilities": [f(x) for x in probs.ravel()],
            "labels": [int(x) for x in labels],
            "temperature": t,
            "logLoss": f(loss(np.log(t))),
            "logLossAtOne": f(loss(0.0)),
            "eceBefore": f(ece_top_label(probs, labels)),
            "eceAfter": f(ece_top_label(calibrated, labels)),
            "calibratedFirstRows": [f(x) for x in calibrated[:3].ravel()],
        }

    return [
        case("binary, over-confident", 400, 2, 4.0, 2.5),
        case("three classes, over-confident", 600, 3, 5.0, 3.0),
        case("four classes, under-confident", 500, 4, 1.5, 0.5),
        case("five classes, calibrated", 800, 5, 3.0, 1.0),
        case("tiny: 12 rows", 12, 3, 2.0, 2.0),
    ]


def pca_reconstruction_cases():
    """NannyML's DataReconstructionDriftCalculator on small tables: categoricals frequency-encoded (share of all rows;
    missing: the most frequent share; unseen: 0), numeric missing → mean of the present values, StandardScaler,
    PCA(n_components=0.65); per-row error = ‖x − inverse_transform(transform(x))‖ for the reference rows and for
    new rows (unseen categories, missing values, a broken correlation)."""
    rng = Lcg(777)

    def encode(columns, types, fitted=None):
        if fitted is None:
            fitted = []
            for values, kind in zip(columns, types):
                if kind == "numeric":
                    present = [v for v in values if v is not None]
                    fitted.append(("numeric", sum(present) / len(present)))
                else:
                    counts = {}
                    for v in values:
                        if v is not None:
                            counts[v] = counts.get(v, 0) + 1
                    freq = {c: n / len(values) for c, n in counts.items()}
                    fitted.append(("categorical", freq, max(freq.values())))
        out = []
        for values, fit in zip(columns, fitted):
            if fit[0] == "numeric":
                out.append([fit[1] if v is None else v for v in values])
            else:
                out.append([fit[2] if v is None else fit[1].get(v, 0.0) for v in values])
        return np.array(out, dtype=np.float64).T, fitted

    def case(name, columns, types, new_columns):
        x, fitted = encode(columns, types)
        scaler = StandardScaler().fit(x)
        scaled = scaler.transform(x)
        pca = PCA(n_components=0.65, svd_solver="full").fit(scaled)
        errors = lambda s: np.linalg.norm(s - pca.inverse_transform(pca.transform(s)), axis=1)
        new_scaled = scaler.transform(encode(new_columns, types, fitted)[0])
        return {
            "name": name,
            "types": types,
            "columns": columns,
            "newColumns": new_columns,
            "components": int(pca.n_components_),
            "explainedVariance": f(np.sum(pca.explained_variance_ratio_)),
            "center": [f(v) for v in scaler.mean_],
            "scale": [f(v) for v in scaler.scale_],
            "errors": [f(v) for v in errors(scaled)],
            "newErrors": [f(v) for v in errors(new_scaled)],
        }

    def correlated(n, noise):
        base = rng.bell(n, 10, 8, 0.01)
        return base, [b + e for b, e in zip(base, rng.bell(n, 0, noise, 0.01))]

    a, b = correlated(300, 2)
    c = rng.uniform(300, 0, 50, 0.5)
    d = [-x + e for x, e in zip(a, rng.bell(300, 0, 3, 0.01))]
    na, nb = correlated(40, 2)
    nb = list(reversed(nb))  # the correlation with a broken, every marginal kept
    numeric = case("four numeric, two correlated pairs", [a, b, c, d], ["numeric"] * 4, [na, nb, rng.uniform(40, 0, 50, 0.5), [-x for x in na]])

    a2, b2 = correlated(250, 4)
    cats = ["low" if x < 9 else "mid" if x < 11 else "high" for x in a2]
    cats = [None if i % 17 == 0 else ("rare" if i % 41 == 0 else v) for i, v in enumerate(cats)]
    a2 = [None if i % 23 == 0 else v for i, v in enumerate(a2)]
    const = [3.0] * 250
    na2, nb2 = correlated(30, 4)
    ncats = ["unseen" if i % 5 == 0 else None if i % 7 == 0 else "high" for i in range(30)]
    mixed = case(
        "mixed: a categorical tied to a numeric, missing values, a constant column",
        [a2, b2, cats, const],
        ["numeric", "numeric", "categorical", "numeric"],
        [[None if i % 6 == 0 else v for i, v in enumerate(na2)], nb2, ncats, [3.0] * 30],
    )
    return [numeric, mixed]


def mcnemar_cases():
    """McNemar's exact test as scipy.stats.binomtest on the discordant pairs (servingOnly, shadowOnly)."""
    pairs = [(0, 0), (0, 1), (1, 0), (3, 3), (5, 0), (0, 9), (10, 20), (20, 10), (25, 25), (60, 40), (45, 80), (190, 230),
             (1000, 1100), (4990, 5010), (30000, 31000), (2, 40), (123456, 124999)]
    cases = []
    for serving_only, shadow_only in pairs:
        n = serving_only + shadow_only
        p = 1.0 if n == 0 else f(stats.binomtest(shadow_only, n, 0.5).pvalue)
        cases.append({"servingOnly": serving_only, "shadowOnly": shadow_only, "pValue": p})
    return cases


def wilcoxon_cases():
    """scipy.stats.wilcoxon(d) with its defaults (zero_method wilcox, correction False, method auto) on differences
    |serving error| - |shadow error|: exact up to 50 rows without zeros (ties included), else the normal
    approximation with the tie correction; zeros dropped."""
    rng = Lcg(4242)
    cases = []

    def case(name, d):
        res = stats.wilcoxon(d)
        cases.append({"name": name, "d": [f(x) for x in d], "statistic": f(res.statistic), "pValue": f(res.pvalue)})

    case("scipy doc: 10 differences", [6, 8, 14, 16, 23, 24, 28, 29, 41, -48])
    case("tiny: 5 all positive", [1, 2, 3, 4, 5])
    case("exact with ties", [1, -1, 2, 2, -3, 4, 4, 4, -5, 6, 7, -7])
    case("exact, 50 rows, centred", [x for x in rng.uniform(60, -5, 5, 0.25) if x != 0][:50])
    case("zeros switch to approx", [0, 0, 1, 2, -3, 4, 5, 6, -1, 2, 3, 8])
    case("approx: 51 rows shifted", [x + 0.3 for x in rng.bell(51, 0, 4, 0.01)])
    case("approx: 400 rows no shift, coarse ties", rng.uniform(400, -3, 3, 0.5))
    case("approx: 2000 rows small shift", [x + 0.05 for x in rng.bell(2000, 0, 2, 0.001)])
    case("approx: 10000 rows shadow worse", [x - 0.02 for x in rng.bell(10000, 0, 2, 0.001)])
    return cases


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}
    fixtures = {
        "ks_2samp.json": ks_cases(),
        "kstwo_sf.json": kstwo_cases(),
        "chi2.json": chi2_cases(),
        "jensenshannon.json": js_cases(),
        "wasserstein.json": wasserstein_cases(),
        "drift.json": drift_cases(),
        "temperature_scaling.json": temperature_cases(),
        "pca_reconstruction.json": pca_reconstruction_cases(),
        "mcnemar_exact.json": mcnemar_cases(),
        "wilcoxon.json": wilcoxon_cases(),
    }
    for name, cases in fixtures.items():
        (OUT / name).write_text(json.dumps({"generatedBy": "test/oracle/generate.py", "versions": versions, "cases": cases}) + "\n")
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
