"""Trains the quickstart's model and exports it to ONNX.

Iris (shipped with scikit-learn, no download) → logistic regression → iris.onnx, with a
symbolic batch dimension and plain tensor outputs (no ZipMap), so any ONNX runtime serves it.

    python3 -m pip install scikit-learn skl2onnx onnx
    python3 train.py

The committed iris.onnx is the output of this script; users need no Python.
"""

import pathlib

from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    x, y = load_iris(return_X_y=True)
    x = x.astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=7, stratify=y)
    clf = LogisticRegression(max_iter=500, random_state=7).fit(x_train, y_train)
    print(f"hold-out accuracy: {clf.score(x_test, y_test):.3f}")
    onx = to_onnx(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.producer_name = "modelplane-quickstart"
    (HERE / "iris.onnx").write_bytes(onx.SerializeToString())
    print(f"wrote {HERE / 'iris.onnx'}")


if __name__ == "__main__":
    main()
