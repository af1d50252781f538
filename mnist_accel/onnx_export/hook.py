"""When mnist-accel's skl2onnx converter is registered, so that ``skl2onnx.to_onnx(clf, X)`` converts our
``MLPClassifier`` with no call of ours, without making ``import mnist_accel`` pay for skl2onnx.

skl2onnx finds converters in a registry filled at run time, so something must register ours before
``to_onnx`` runs. Importing skl2onnx to do it would cost every ``import mnist_accel`` far more than the
package's own import (skl2onnx loads onnx, protobuf and much of scikit-learn; the figures are in
docs/export.md). So ``install()``, called by ``import mnist_accel``, imports nothing:

- skl2onnx already imported: register at once (scikit-learn is loaded by then; only our estimator's module
  is added);
- otherwise: a finder on ``sys.meta_path`` waits for the first import of skl2onnx, lets it run, registers
  right after, and leaves ``sys.meta_path``. Until then it only compares each imported name with one string.

Both import orders are covered, and a program that never imports skl2onnx never loads it or scikit-learn.
``mnist_accel.onnx_export.register()`` registers explicitly (needed only where skl2onnx was imported in a way
that bypasses the import system, e.g. reloaded by hand). A failed automatic registration never breaks the
import of skl2onnx: it becomes a RuntimeWarning, and ``register()`` raises the error itself.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

WATCHED = "skl2onnx"


def register_quietly() -> None:
    try:
        from mnist_accel.onnx_export.converter import register

        register()
    except Exception as exc:  # skl2onnx's import must go on whatever its registry thinks of us
        warnings.warn(f"mnist-accel could not register its skl2onnx converter ({type(exc).__name__}: {exc}); "
                      "mnist_accel.onnx_export.register() raises the error", RuntimeWarning, stacklevel=2)


class _RegisteringLoader:
    """skl2onnx's own loader, registering our converter once it has executed the module."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str):  # resources, get_data, is_package ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        register_quietly()


class Watcher(importlib.abc.MetaPathFinder):
    """Answers only for ``skl2onnx``: the spec the other finders give, with the loader wrapped."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != WATCHED:
            return None
        for finder in [f for f in sys.meta_path if not isinstance(f, Watcher)]:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None  # not installed: the import fails as usual, and a later install is still watched
        uninstall()
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def installed() -> bool:
    return any(isinstance(f, Watcher) for f in sys.meta_path)


def install() -> None:
    """Register now if skl2onnx is imported, else watch for its import (once per process)."""
    if sys.modules.get(WATCHED) is not None:  # None: its import is blocked (a test standing in for "absent")
        register_quietly()
    elif not installed():
        sys.meta_path.insert(0, Watcher())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, Watcher)]
