#!/usr/bin/env bash
# The GPU check in one command, for a machine with a CUDA GPU and no network (CuPy, numba-cuda, PyTorch
# and pytest-benchmark already installed, as on the H200 machines this project may borrow). It installs
# this checkout without dependencies, runs every `gpu` test and the benchmark groups that have GPU rows
# (SGEMM peaks, the loop, the vectorized step against PyTorch, time to 98%), and writes it all under one
# folder: device.txt (GPU, driver, library versions), gpu-tests.txt, bench.json, report.md, chart.png.
#
#   bash bench/gpu.sh [OUT]             # OUT defaults to bench/results/gpu-<date>
#   bash bench/gpu.sh --standin OUT     # the same steps on the CPU: CuPy's stand-in, Numba's simulator
#
# --standin runs every step against tests/cuda_standin (as a GPU) and Numba's CUDA simulator, on small
# workloads, so that CI proves the script end to end before its first real run: the tests that are not
# `slow` (the simulator takes minutes an epoch), the benchmark rows on 32 samples without the GPU's SGEMM
# peak and time to 98% (minutes on the stand-in), and the report without its targets (not a GPU's figures).
#
# Budget: about 8 minutes at most (tests 3, benchmarks 5, each under a timeout of its own).
set -uo pipefail  # not -e: a failed test must still leave the benchmarks and the report
cd "$(dirname "$0")/.."
standin=0
if [ "${1:-}" = "--standin" ]; then
    standin=1
    shift
fi
out="${1:-bench/results/gpu-$(date +%F)}"
mkdir -p "$out"
export MNIST_ACCEL_DATA="${MNIST_ACCEL_DATA:-$(cd .. && pwd)/shared/data/mnist}"
export PYTHONWARNINGS=ignore
py=(python)
marks="gpu"
bench_args=()
check=(--check)
if [ "$standin" -eq 1 ]; then
    export PYTHONPATH="tests:.${PYTHONPATH:+:$PYTHONPATH}" CUDA_STANDIN_AS_GPU=1 NUMBA_ENABLE_CUDASIM=1
    py=(python -m cuda_standin.run)
    marks="gpu and not slow"
    bench_args=(--samples 32 -k "not gpu_sgemm_peak and not time_to_98")
    check=()
fi

# Run from the checkout, which imports as the package (kernels/ included) wherever its dependencies are
# installed; only where it does not, install it (--no-build-isolation: isolation would download setuptools,
# and there is no network).
if python -c "import mnist_accel.kernels, mnist_accel.backends.selection as s; print('using', s.__file__)" \
        >"$out/install.txt" 2>&1; then
    :
elif ! python -m pip install -q --no-deps --no-build-isolation -e . >>"$out/install.txt" 2>&1; then
    echo "gpu.sh: installing this checkout failed; see $out/install.txt" >&2
    exit 1
fi
device_code=$(cat <<'PY'
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
)
{
    nvidia-smi || echo "nvidia-smi: not available"
    "${py[@]}" -c "$device_code"
} >"$out/device.txt" 2>&1
cat "$out/device.txt"

timeout 180 "${py[@]}" -m pytest -m "$marks" tests -q -rs -p no:cacheprovider >"$out/gpu-tests.txt" 2>&1
tests=$?
tail -n 3 "$out/gpu-tests.txt"

timeout 300 "${py[@]}" -m pytest bench/test_peak.py bench/test_loop.py bench/test_vectorized.py -q -p no:cacheprovider \
    "${bench_args[@]}" --benchmark-json "$out/bench.json" >"$out/bench.txt" 2>&1
bench=$?
tail -n 3 "$out/bench.txt"

report=1
if [ -s "$out/bench.json" ]; then
    python -m bench.report "$out/bench.json" --markdown "$out/report.md" --png "$out/chart.png" "${check[@]}"
    report=$?
fi
echo "gpu.sh: tests exit $tests, benchmarks exit $bench, targets exit $report; results in $out"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ] && [ "$report" -eq 0 ]
