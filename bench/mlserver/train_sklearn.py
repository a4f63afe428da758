"""The MLServer side of bench/mlserver: the scikit-learn twin of a model version `ballast train` wrote.

Usage: python train_sklearn.py <training.csv> <ballast version dir> <out dir>

Trains sklearn's MLPClassifier on the rows Ballast trained on (the CSV less the version's holdout.jsonl rows) with
Ballast's preprocessing (its stored per-feature mean and std, the same population std) and Ballast's selected
architecture and optimiser settings (hidden units, ReLU, softmax, Adam, learning rate, batch size, L2, epochs run).
Writes <out>/model.joblib and <out>/model-settings.json for MLServer's sklearn runtime, and prints one JSON line:
both models' accuracy on the same holdout rows.
"""

import csv
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def row_key(features, values, label):
    return tuple(float(values[f]) for f in features) + (str(label),)


def main(csv_path: str, version_dir: str, out_dir: str) -> None:
    version = Path(version_dir)
    meta = json.loads((version / "metadata.json").read_text())
    if meta["task"] != "classification":
        sys.exit(f"{version}: task {meta['task']}; this bench serves a classifier")
    specs = meta["features"]
    if any(f["type"] != "numeric" for f in specs):
        sys.exit(f"{version}: categorical features; this bench's twin takes numeric features only")
    features = [f["name"] for f in specs]
    label = meta["label"]
    training = meta["training"]

    holdout = [json.loads(line) for line in (version / "holdout.jsonl").read_text().splitlines() if line.strip()]
    held = Counter(row_key(features, h["features"], h["label"]) for h in holdout)
    train_x, train_y = [], []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            key = row_key(features, row, row[label])
            if held[key] > 0:
                held[key] -= 1
                continue
            train_x.append([float(row[n]) for n in features])
            train_y.append(row[label])
    if sum(held.values()) != 0:
        sys.exit(f"{sum(held.values())} holdout rows of {version} are not in {csv_path}: not the CSV Ballast trained on")

    # Ballast's own standardisation, not a refit: the twin sees exactly the inputs Ballast's network sees.
    scaler = StandardScaler().fit(np.asarray(train_x))
    scaler.mean_ = np.array([f["mean"] for f in specs])
    scaler.scale_ = np.array([f["std"] if f["std"] > 0 else 1.0 for f in specs])
    scaler.var_ = scaler.scale_**2
    mlp = MLPClassifier(
        hidden_layer_sizes=tuple(training["hiddenUnits"]),
        activation="relu",
        solver="adam",
        alpha=training["l2"],
        batch_size=training["batchSize"],
        learning_rate_init=training["learningRate"],
        max_iter=training["epochsRun"],
        random_state=training["seed"],
    )
    model = Pipeline([("scale", scaler), ("mlp", mlp)])
    with warnings.catch_warnings():
        # max_iter is Ballast's epoch count, so "did not converge" is expected and says nothing here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(scaler.transform(np.asarray(train_x)), np.asarray(train_y))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    settings = {
        "name": meta["model"],
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": meta["version"]},
    }
    (out / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")

    hx = np.array([[float(h["features"][n]) for n in features] for h in holdout])
    hy = np.array([str(h["label"]) for h in holdout])
    print(
        json.dumps(
            {
                "trainRows": len(train_x),
                "holdoutRows": len(holdout),
                "hiddenUnits": training["hiddenUnits"],
                "epochs": training["epochsRun"],
                "classes": [str(c) for c in mlp.classes_],
                "sklearnHoldoutAccuracy": float((model.predict(hx) == hy).mean()),
                "ballastHoldoutAccuracy": meta["holdoutMetrics"].get("accuracy"),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
