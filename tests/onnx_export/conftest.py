"""What the ONNX tests share: the MNIST test images as the graphs take them, and ONNX Runtime running a
model on them."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from mnist_accel.data.mnist import normalize


@pytest.fixture(scope="session")
def test_pixels(mnist) -> np.ndarray:
    """All 10,000 test images, float64 in [0, 1] (cast per model: what predict_proba computes in)."""
    return normalize(mnist.test_images, np.float64)


def run_onnx(model, *inputs: np.ndarray) -> list:
    """The model's outputs for ``inputs`` (fed in the order of the graph's inputs), on ONNX Runtime's CPU."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


@pytest.fixture(scope="session")
def onnx_run():
    return run_onnx
