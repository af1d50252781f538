"""Run a Python module, script or code string with the CuPy stand-in active, as ``python`` would:

    python -m cuda_standin.run -m mnist_accel.train --backend cuda --epochs 1 ...
    python -m cuda_standin.run -c "import cupy; print(cupy.zeros(3))" ARGS...
    python -m cuda_standin.run path/to/script.py ARGS...

``sys.argv`` is what the target would see; ``SystemExit`` (and its code) passes through. The tests'
folder must be on ``sys.path`` (e.g. ``PYTHONPATH=tests``) for ``cuda_standin`` to import. With
``CUDA_STANDIN_AS_GPU=1`` the stand-in passes for a working GPU (``activate(as_gpu=True)``): ``auto`` picks
it and ``gpu`` tests run on it.
"""

from __future__ import annotations

import os
import runpy
import sys

from . import activate

USAGE = "usage: python -m cuda_standin.run (-m MODULE | -c CODE | SCRIPT) [ARGS...]"


def main(argv: list[str]) -> None:
    if not argv or (argv[0] in ("-m", "-c") and len(argv) < 2):
        raise SystemExit(USAGE)
    with activate(as_gpu=os.environ.get("CUDA_STANDIN_AS_GPU") == "1"):
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]  # runpy puts the module's file name in argv[0]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
