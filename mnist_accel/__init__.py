"""mnist-accel: train MLPs on MNIST from scratch, fast on every path (NumPy, Numba, CUDA)."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import TrainConfig, resolve  # noqa: E402
from .errors import BackendUnavailable, ConfigError, DataError, DataUnavailable  # noqa: E402
from .fit import FitResult, fit  # noqa: E402

__all__ = ["BackendUnavailable", "ConfigError", "DataError", "DataUnavailable", "FitResult", "MLPClassifier",
           "TrainConfig", "__version__", "fit", "resolve"]


def __getattr__(name: str):
    # scikit-learn is optional: importing mnist_accel must not need it, only MLPClassifier does.
    if name == "MLPClassifier":
        try:
            from .classifier import MLPClassifier
        except ImportError as exc:
            raise ImportError(f"MLPClassifier needs scikit-learn ({exc}); pip install 'mnist-accel[sklearn]'") from None
        return MLPClassifier
    raise AttributeError(f"module 'mnist_accel' has no attribute {name!r}")
