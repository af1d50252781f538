"""The built wheel ships kernels/ as mnist_accel.kernels (with its CUDA source), never a top-level
``kernels`` module, and runs from outside the checkout."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Built as users build it: pip fetches the build requirements (setuptools, wheel) into isolation.
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("mnist_accel-*.whl"))


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "mnist_accel/kernels/loop_cpu.py" in names and "mnist_accel/kernels/vectorized_cuda.cu" in names
    assert not [n for n in names if n.startswith("kernels/")]
    assert "mnist_accel/train.py" in names and "mnist_accel/classifier.py" in names
    assert {"mnist_accel/ops/xp_ops.py", "mnist_accel/ops/numba_ops.py", "mnist_accel/ops/cuda_ops.py"} <= set(names)


def test_installed_package_runs_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import mnist_accel, mnist_accel.kernels.loop_cpu as k, importlib.util;"
            "assert mnist_accel.__file__.startswith(%r);"
            "assert importlib.util.find_spec('kernels') is None;"
            "print(k.__name__)") % str(site)
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mnist_accel.kernels.loop_cpu"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = path.parent.relative_to(REPO).parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            names.add(".".join(p for p in (base, node.module or "") if p))
    return names


def test_kernels_are_a_leaf():
    """kernels/ holds kernels alone: the ops that call them live in the package above, never the reverse."""
    for path in sorted((REPO / "kernels").glob("*.py")):
        assert not [n for n in _imports(path) if n.startswith("mnist_accel")], path.name


def test_only_the_backend_imports_cupy():
    for path in sorted([*(REPO / "mnist_accel").rglob("*.py"), *(REPO / "kernels").glob("*.py")]):
        if path.name != "backend.py":
            assert not [n for n in _imports(path) if n.split(".")[0] == "cupy"], path.name
