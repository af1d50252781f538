"""When the skl2onnx converter is registered: ``import mnist_accel`` loads neither skl2onnx nor scikit-learn,
and ``skl2onnx.to_onnx`` finds our converter whichever of the two was imported first, with no call of ours."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("sklearn")

from mnist_accel.onnx_export import hook

REGISTERED = """
from skl2onnx._supported_operators import sklearn_operator_name_map
import mnist_accel
print(sorted(sklearn_operator_name_map[c] for c in (mnist_accel.MLPClassifier, mnist_accel.MLPRegressor)
             if c in sklearn_operator_name_map))
"""


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_mnist_accel_loads_neither():
    out = _python("import sys, mnist_accel; print(sorted(m for m in ('skl2onnx', 'onnx', 'sklearn') "
                  "if m in sys.modules), [type(f).__name__ for f in sys.meta_path].count('Watcher'))")
    assert out == "[] 1"


@pytest.mark.parametrize("first", ["import mnist_accel, skl2onnx", "import skl2onnx, mnist_accel"])
def test_registered_in_either_import_order(first):
    """And the watcher has left sys.meta_path."""
    out = _python(first + REGISTERED + "import sys; print([type(f).__name__ for f in sys.meta_path].count('Watcher'))")
    assert out.splitlines() == ["['MnistAccelMLPClassifier', 'MnistAccelMLPRegressor']", "0"]


def test_a_failed_registration_warns_and_never_breaks_the_import(monkeypatch):
    from mnist_accel.onnx_export import converter

    def broken():
        raise RuntimeError("registry says no")

    monkeypatch.setattr(converter, "register", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hook.register_quietly()
    assert any("registry says no" in str(w.message) and w.category is RuntimeWarning for w in caught)


def test_an_absent_skl2onnx_is_still_watched(monkeypatch):
    """A failed import (skl2onnx not installed) leaves the watcher in place for a later install."""
    watcher = hook.Watcher()
    monkeypatch.setattr(sys, "meta_path", [watcher])
    assert watcher.find_spec("skl2onnx") is None and hook.installed()
    assert watcher.find_spec("numpy") is None
