#!/usr/bin/env bash
# The GPU check in one command, for a machine with a CUDA GPU and no network (CuPy, numba-cuda, PyTorch
# and pytest-benchmark already installed, as on the H200 machines this project may borrow). It installs
# this checkout without dependencies, runs every `gpu` test and the benchmark groups that have GPU rows
# (SGEMM peaks, the loop, the vectorized step against PyTorch, time to 98%), and writes it all under one
# folder: device.txt (GPU, driver, library versions), gpu-tests.txt, bench.json, report.md, chart.png.
#
#   bash bench/gpu.sh [OUT]        # OUT defaults to bench/results/gpu-<date>
#
# Budget: about 8 minutes at most (tests 3, benchmarks 5, each under a timeout of its own).
set -uo pipefail  # not -e: a failed test must still leave the benchmarks and the report
cd "$(dirname "$0")/.."
out="${1:-bench/results/gpu-$(date +%F)}"
mkdir -p "$out"
export MNIST_ACCEL_DATA="${MNIST_ACCEL_DATA:-$(cd .. && pwd)/shared/data/mnist}"
export PYTHONWARNINGS=ignore

# --no-build-isolation: building in isolation would download setuptools, and there is no network
if ! python -m pip install -q --no-deps --no-build-isolation -e . >"$out/install.txt" 2>&1; then
    echo "gpu.sh: installing this checkout failed; see $out/install.txt" >&2
    exit 1
fi
{
    nvidia-smi || echo "nvidia-smi: not available"
    python - <<'PY'
import importlib, platform
print("python", platform.python_version(), platform.machine())
for name in ("numpy", "cupy", "numba", "numba_cuda", "torch", "pytest_benchmark", "mnist_accel"):
    try:
        print(name, getattr(importlib.import_module(name), "__version__", "?"))
    except Exception as exc:  # report what is missing, keep going
        print(name, "missing:", type(exc).__name__, exc)
from mnist_accel.backends.selection import cuda_unavailable_reason, get_backend
reason = cuda_unavailable_reason()
print("mnist-accel cuda backend:", get_backend("cuda").device if reason is None else f"unavailable: {reason}")
PY
} >"$out/device.txt" 2>&1
cat "$out/device.txt"

timeout 180 python -m pytest -m gpu tests -q -rs -p no:cacheprovider >"$out/gpu-tests.txt" 2>&1
tests=$?
tail -n 3 "$out/gpu-tests.txt"

timeout 300 python -m pytest bench/test_peak.py bench/test_loop.py bench/test_vectorized.py -q -p no:cacheprovider \
    --benchmark-json "$out/bench.json" >"$out/bench.txt" 2>&1
bench=$?
tail -n 3 "$out/bench.txt"

report=1
if [ -s "$out/bench.json" ]; then
    python -m bench.report "$out/bench.json" --markdown "$out/report.md" --png "$out/chart.png" --check
    report=$?
fi
echo "gpu.sh: tests exit $tests, benchmarks exit $bench, targets exit $report; results in $out"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ] && [ "$report" -eq 0 ]
