"""``bench/gpu.sh``, the one command a lent GPU runs, end to end on the CPU (``--standin``: CuPy's stand-in as
the GPU, Numba's CUDA simulator, small workloads), so that its first real run cannot die on a script error:
it installs the checkout, writes the device report, the test log, the benchmark JSON with the GPU rows,
the report and the chart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.standin
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_runs_end_to_end_on_the_stand_in(tmp_path):
    out = tmp_path / "gpu"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(["bash", "bench/gpu.sh", "--standin", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mnist-accel cuda backend: CuPy stand-in" in (out / "device.txt").read_text()
    log = (out / "gpu-tests.txt").read_text()
    assert " passed" in log and " failed" not in log and " error" not in log
    rows = json.loads((out / "bench.json").read_text())["benchmarks"]
    backends = {r["extra_info"].get("backend") for r in rows}
    assert {"cuda", "cuda-eager", "numba", "numpy"} <= backends  # the GPU rows ran, beside the CPU's
    assert "| target |" in (out / "report.md").read_text()
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
