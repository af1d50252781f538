"""ONNX export: a model's parameters as an ONNX graph (``graph``), model files to ``.onnx`` files
(``saved``), and skl2onnx's converter for ``mnist_accel.MLPClassifier`` (``converter``, registered as
``hook`` describes). Importing this package imports neither onnx nor skl2onnx; the ``onnx`` extra
(``pip install 'mnist-accel[onnx]'``) brings both.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'mnist-accel[onnx]'"


def require_onnx() -> None:
    """ImportError with the install hint, unless the onnx package can be imported."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None


def register() -> None:
    """Register the skl2onnx converter for ``mnist_accel.MLPClassifier`` now (idempotent). Importing
    mnist_accel already arranges it (see ``mnist_accel.onnx_export.hook``); call this to see an error."""
    try:
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ImportError(f"the skl2onnx converter needs skl2onnx: {INSTALL_HINT}") from None
    from mnist_accel.onnx_export.converter import register as _register

    _register()
