"""The built wheel ships kernels/ as mnist_accel.kernels (with its CUDA source), never a top-level
``kernels`` module, and the README's first commands run after ``pip install .`` or ``pip install -e .``,
in the checkout (whose ``mnist_accel/`` then shadows the installed package) and anywhere else."""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import subprocess
import sys
import sysconfig
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
    assert "mnist_accel/kernels/cpu/loop_cpu.py" in names and "mnist_accel/kernels/cuda/vectorized_cuda.cu" in names
    assert not [n for n in names if n.startswith("kernels/")]
    assert "mnist_accel/train.py" in names and "mnist_accel/classifier.py" in names
    assert {f"mnist_accel/backends/{m}_ops.py" for m in ("xp", "numba", "cuda")} <= set(names)
    assert {f"mnist_accel/serve/static/{f}" for f in ("index.html", "pad.js", "pad.css")} <= set(names)


def test_installed_package_runs_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import mnist_accel, mnist_accel.kernels.cpu.loop_cpu as k, importlib.util;"
            f"assert mnist_accel.__file__.startswith({str(site)!r});"
            "assert importlib.util.find_spec('kernels') is None;"
            "print(k.__name__)")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mnist_accel.kernels.cpu.loop_cpu"


def _entry_modules() -> dict[str, str]:
    """Every command users type as ``python -m mnist_accel.X``, by X: a module at the package's top with a
    ``__main__`` block, or a subpackage with a ``__main__.py``."""
    entries = {p.stem: f"mnist_accel.{p.stem}" for p in (REPO / "mnist_accel").glob("*.py")
               if p.stem != "__init__" and 'if __name__ == "__main__"' in p.read_text()}
    entries.update({p.parent.name: f"mnist_accel.{p.parent.name}.__main__"
                    for p in (REPO / "mnist_accel").glob("*/__main__.py")})
    return entries


def test_every_command_has_its_script():
    """``python -m mnist_accel.X`` has the script ``mnist-accel-X``, and both run the same ``main``."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    entries = _entry_modules()
    assert {"train", "predict", "serve", "sweep"} <= set(entries)
    for name, module in sorted(entries.items()):
        assert f"mnist-accel-{name}" in scripts, f"python -m mnist_accel.{name} has no script mnist-accel-{name}"
        target, _, attr = scripts[f"mnist-accel-{name}"].partition(":")
        assert getattr(importlib.import_module(target), attr) is importlib.import_module(module).main, name


def test_installed_scripts_start_their_commands(wheel, fresh_venv, tmp_path):
    """Each script the wheel declares is installed and starts its command, from another folder; the pad's
    page ships with the installed package."""
    entry_points = configparser.ConfigParser()
    with zipfile.ZipFile(wheel) as z:
        entry_points.read_string(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")))
                                 .decode())
    scripts = dict(entry_points["console_scripts"])
    assert {f"mnist-accel-{name}" for name in _entry_modules()} <= set(scripts)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for script in scripts:
        proc = subprocess.run([str(fresh_venv.parent / script), "--help"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: "), (script, proc.stderr)
    files = subprocess.run([str(fresh_venv), "-c", "from mnist_accel.serve.handlers import static_files; "
                            "print(*sorted(static_files()))"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
    assert files.stdout.split() == ["/", "/static/index.html", "/static/pad.css", "/static/pad.js"], files.stderr


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    """A new virtual environment holding the wheel (``pip install .``); the dependencies come from this
    environment's site-packages through a ``.pth`` line (a path, so this environment's own install of
    mnist_accel, an editable finder or a copy, is not on it), so the test needs no network."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return python


FIRST_COMMAND = ["-m", "mnist_accel.train", "--epochs", "1", "--train-samples", "2000", "--test-samples", "500"]
DROP_IN = ("import numpy as np, mnist_accel; from mnist_accel import MLPClassifier;"
           "from mnist_accel.data import load_mnist, normalize;"
           "d = load_mnist(progress=False); x = normalize(d.train_images[:1000], np.float32);"
           "c = MLPClassifier(hidden_layer_sizes=(32,), max_iter=2, random_state=0).fit(x, d.train_labels[:1000]);"
           "print(mnist_accel.__file__, c.score(x, d.train_labels[:1000]))")


@pytest.mark.parametrize("install", ["wheel", "this environment"])
@pytest.mark.parametrize("folder", ["checkout", "elsewhere"])
def test_first_command_and_drop_in_run_after_install(install, folder, fresh_venv, tmp_path, mnist):
    """``python -m mnist_accel.train`` and ``MLPClassifier.fit`` as a new user runs them: with the wheel in a
    fresh venv, or in this (editable) environment, from the repository root and from another folder."""
    python = str(fresh_venv) if install == "wheel" else sys.executable
    cwd = REPO if folder == "checkout" else tmp_path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    train = subprocess.run([python, *FIRST_COMMAND], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    assert "test accuracy" in train.stdout
    fit = subprocess.run([python, "-c", DROP_IN], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    where, score = fit.stdout.split()
    assert float(score) > 0.5
    if install == "wheel" and folder == "elsewhere":  # the installed copy, not the checkout
        assert Path(where).is_relative_to(fresh_venv.parent.parent), where
    if folder == "checkout":  # the checkout's folder shadows any install, and still finds its kernels
        assert Path(where).parent == REPO / "mnist_accel", where


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package; ``from a import b`` counts
    ``a`` and ``a.b`` (b may be a module)."""
    package = path.parent.relative_to(REPO).parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_kernels_are_a_leaf():
    """kernels/ holds kernels alone: the ops that call them live in the package above, never the reverse."""
    for path in sorted((REPO / "kernels").rglob("*.py")):
        assert not [n for n in _imports(path) if n.startswith("mnist_accel")], path.name


def test_only_the_backend_selection_imports_cupy():
    for path in sorted([*(REPO / "mnist_accel").rglob("*.py"), *(REPO / "kernels").rglob("*.py")]):
        if path.relative_to(REPO).as_posix() != "mnist_accel/backends/selection.py":
            assert not [n for n in _imports(path) if n.split(".")[0] == "cupy"], path.name


# The package's floors, lowest first: a module imports only from its own floor or below.
LAYERS = [
    ("version", "errors", "rng", "model", "losses"),  # pure maths, the counter RNG, exceptions
    ("config", "presets", "optim", "persist", "data"),  # options and presets, optimizers and schedules, safe files,
    # the data
    ("backends",),  # selection and each backend's ops and policies
    ("trainers",),  # per-sample, mini-batch, CUDA graphs
    ("training", "plots"),  # fit and its epoch loop, checkpoints, signals, divergence; pictures
    ("classifier", "estimators", "cli", "serve", "onnx_export"),  # the scikit-learn estimators; the commands; the
    # drawing pad's server; ONNX export
    ("sweep",),  # the search, above the training command whose options it takes
    ("__init__", "train", "predict", "export"),  # the package's front and the commands where users type them
]


def _layer(module: str) -> int:
    first = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if first in names)


def _modules() -> dict[str, Path]:
    out = {}
    for path in (REPO / "mnist_accel").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_no_module_imports_a_higher_floor():
    """cli -> training -> trainers -> backends -> kernels: dependencies point down (mnist_accel.kernels, the
    leaf, is checked above)."""
    modules = _modules()
    for name, path in sorted(modules.items()):
        for imported in _imports(path):
            if not imported.startswith("mnist_accel.") or imported.startswith("mnist_accel.kernels"):
                continue
            target = max((m for m in modules if imported == m or imported.startswith(m + ".")), key=len)
            assert _layer(target) <= _layer(name), f"{name} imports {imported} from a higher floor"


def test_no_stem_is_shared_between_the_package_and_its_kernels():
    ours = {p.stem for p in (REPO / "mnist_accel").rglob("*.py")} - {"__init__", "__main__"}
    kernels = {p.stem for p in (REPO / "kernels").rglob("*.py")} - {"__init__"}
    assert not ours & kernels
