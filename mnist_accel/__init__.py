"""mnist-accel: train MLPs on MNIST from scratch, fast on every path (NumPy, Numba, CUDA)."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import TrainConfig, resolve  # noqa: E402
from .errors import BackendUnavailable, ConfigError, DataError, DataUnavailable  # noqa: E402
from .fit import FitResult, fit  # noqa: E402

__all__ = ["BackendUnavailable", "ConfigError", "DataError", "DataUnavailable", "FitResult", "TrainConfig",
           "__version__", "fit", "resolve"]
