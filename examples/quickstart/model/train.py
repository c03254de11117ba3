"""Trains the quickstart's two model versions and writes the data the hooks use.

Iris (shipped with scikit-learn, no download), split 70/30:

- iris-v1.onnx: logistic regression on the raw features (version 1, the stable variant);
- iris-v2.onnx: a small neural network, one hidden layer of 16 (version 2, the canary);
- ../data/train.csv: the training rows, the drift baseline;
- ../data/holdout.csv: the hold-out rows the validation hook scores;
- ../data/holdout_sites.csv: the same rows with a `site` column (0, 1, 2 in turn), for the
  fairness gate (accuracy per site);
- ../data/request.json: one Open Inference Protocol request, the benchmark's payload.

Both models have a symbolic batch dimension and plain tensor outputs (no ZipMap), so any
ONNX runtime serves them.

    python3 -m pip install scikit-learn skl2onnx onnx
    python3 train.py

The committed files are the output of this script; users need no Python.
"""

import json
import pathlib

from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def export(model, path: pathlib.Path) -> None:
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(model): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.producer_name = "modelplane-quickstart"
    path.write_bytes(onx.SerializeToString())
    print(f"wrote {path}")


def write_csv(path: pathlib.Path, x, y) -> None:
    rows = [",".join(COLUMNS)]
    rows += [",".join(f"{float(v):.1f}" for v in features) + f",{int(label)}" for features, label in zip(x, y)]
    path.write_text("\n".join(rows) + "\n")
    print(f"wrote {path} ({len(rows) - 1} rows)")


def write_sites(source: pathlib.Path, path: pathlib.Path) -> None:
    header, *rows = source.read_text().splitlines()
    out = [header + ",site"] + [f"{row},{i % 3}" for i, row in enumerate(rows)]
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path} ({len(rows)} rows, 3 sites)")


def main() -> None:
    x, y = load_iris(return_X_y=True)
    x = x.astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=7, stratify=y)
    v1 = LogisticRegression(max_iter=500, random_state=7).fit(x_train, y_train)
    v2 = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2000, random_state=7).fit(x_train, y_train)
    print(f"hold-out accuracy: v1 {v1.score(x_test, y_test):.3f}, v2 {v2.score(x_test, y_test):.3f}")
    export(v1, HERE / "iris-v1.onnx")
    export(v2, HERE / "iris-v2.onnx")
    DATA.mkdir(exist_ok=True)
    write_csv(DATA / "train.csv", x_train, y_train)
    write_csv(DATA / "holdout.csv", x_test, y_test)
    write_sites(DATA / "holdout.csv", DATA / "holdout_sites.csv")
    request = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}
    (DATA / "request.json").write_text(json.dumps(request, indent=2) + "\n")
    print(f"wrote {DATA / 'request.json'}")


if __name__ == "__main__":
    main()
