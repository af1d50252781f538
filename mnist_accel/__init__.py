"""mnist-accel: train MLPs on MNIST from scratch, fast on every path (NumPy, Numba, CUDA)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mnist_accel.version import __version__


def _kernels_from_checkout() -> None:
    """Give a source checkout the package an install makes: ``kernels/`` sits beside ``mnist_accel/`` there
    and becomes ``mnist_accel.kernels`` only through the install's mapping, so a command run in the checkout
    (whose folder shadows the installed package) would find no kernels. Load them under that name."""
    here = Path(__file__).resolve().parent
    source = here.parent / "kernels" / "__init__.py"
    name = f"{__name__}.kernels"
    if name in sys.modules or (here / "kernels").is_dir() or not source.is_file():
        return  # installed (the kernels are inside), or an editable install's finder already mapped them
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=[str(source.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_kernels_from_checkout()

from mnist_accel.config import TrainConfig, resolve  # noqa: E402
from mnist_accel.errors import BackendUnavailable, ConfigError, DataError, DataUnavailable  # noqa: E402
from mnist_accel.training.fit import FitResult, fit  # noqa: E402

__all__ = ["BackendUnavailable", "ConfigError", "DataError", "DataUnavailable", "FitResult", "MLPClassifier",
           "MLPRegressor", "TrainConfig", "__version__", "fit", "resolve"]


def __getattr__(name: str):
    # scikit-learn is optional: importing mnist_accel must not need it, only the estimators do.
    if name in ("MLPClassifier", "MLPRegressor"):
        try:
            from mnist_accel import estimators
        except ImportError as exc:
            raise ImportError(f"{name} needs scikit-learn ({exc}); pip install 'mnist-accel[sklearn]'") from None
        return getattr(estimators, name)
    raise AttributeError(f"module 'mnist_accel' has no attribute {name!r}")


# skl2onnx.to_onnx converts MLPClassifier with no call of ours, and this import loads neither skl2onnx nor
# scikit-learn: see mnist_accel.onnx_export.hook. Last, so that the hook may find MLPClassifier above.
from mnist_accel.onnx_export.hook import install as _install_onnx_hook  # noqa: E402

_install_onnx_hook()
