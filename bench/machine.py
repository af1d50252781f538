"""The machine a benchmark run was measured on, so its figures say where they come from.

``describe()`` is saved in every run's ``machine_info`` (``bench/conftest.py``): the CPU model and vendor,
its cores, the vector extensions it offers, the CPU LLVM compiles our kernels for, each BLAS library with
its version, the kernels it runs and its threads, the OpenMP runtimes, the environment variables that
steer them (``OPENBLAS_CORETYPE`` forces OpenBLAS's kernels whatever the CPU), what runs the first layer's
GEMMs (our ``gemm_cpu`` on Numba's threads, or BLAS) and the library versions. ``summary()`` turns a run's
``machine_info`` into the lines ``bench.report`` prints first; runs saved before this existed fall back on
pytest-benchmark's own CPU record (model, cores, flags).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from typing import Any

# the extensions that decide how fast our kernels and BLAS run, in the order printed
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16",
                "avx512_fp16", "avx_vnni", "amx_tile", "asimd", "sve")
ENVIRONMENT = ("OPENBLAS_", "GOTO_", "OMP_", "MKL_", "KMP_", "BLIS_", "NUMBA_")  # prefixes recorded
PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "tbb", "mnist-accel", "scikit-learn", "torch", "jax",
            "cupy-cuda12x", "cupy-cuda13x", "pytest-benchmark")


def versions() -> dict[str, str]:
    """Python's version and each installed package's of ``PACKAGES``."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _libraries() -> tuple[list[dict], list[dict]]:
    """(BLAS libraries, OpenMP runtimes) loaded in this process, as threadpoolctl sees them."""
    import numpy  # noqa: F401  (loads NumPy's BLAS, the one our GEMMs use)
    from threadpoolctl import threadpool_info

    blas, openmp = [], []
    for lib in threadpool_info():
        entry = {"library": lib.get("internal_api"), "version": lib.get("version"), "threads": lib.get("num_threads"),
                 "file": os.path.basename(lib.get("filepath", ""))}
        if lib.get("architecture"):
            entry["kernels"] = lib["architecture"]
        (blas if lib.get("user_api") == "blas" else openmp).append(entry)
    return blas, openmp


def first_layer() -> dict[str, Any]:
    """What runs the vectorized trainer's first-layer GEMMs here, by ``gemm_policy``'s rule: our ``gemm_cpu``
    on Numba's threads (with the layer and thread count), or BLAS."""
    import numba

    from mnist_accel.backends import gemm_policy

    ours = gemm_policy.runs_here()
    return {"gemm": "gemm_cpu" if ours else "BLAS", "numba_layer": numba.threading_layer() if ours else None,
            "numba_threads": numba.get_num_threads() if ours else None}


def describe() -> dict[str, Any]:
    """This machine, as saved in a run's ``machine_info['mnist_accel']``."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    from mnist_accel.backends.cores import share

    try:
        from llvmlite import binding

        llvm_cpu = binding.get_host_cpu_name()
    except ImportError:
        llvm_cpu = None
    blas, openmp = _libraries()
    return {"cpu": info.get("model name") or platform.processor() or platform.machine(),
            "vendor": info.get("vendor_id", ""), "family": info.get("cpu family"), "model": info.get("model"),
            "cores": os.cpu_count(), "usable_cores": share(),
            "vector_extensions": [f for f in VECTOR_FLAGS if f in flags], "llvm_cpu": llvm_cpu,
            "blas": blas, "openmp": openmp, "first_layer": first_layer(), "versions": versions(),
            "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENVIRONMENT)}}


def summary(machine_info: dict[str, Any] | None) -> list[str]:
    """Markdown lines naming the machine of a saved run."""
    machine_info = machine_info or {}
    ours = machine_info.get("mnist_accel")
    if ours:
        ident = ", ".join(filter(None, (ours.get("vendor"), ours.get("family") and f"family {ours['family']}",
                                         ours.get("model") and f"model {ours['model']}")))
        cpu = f"{ours['cpu']} ({ident})" if ident else ours["cpu"]
        cores = f"{ours['cores']} cores" + (f" ({ours['usable_cores']} usable)"
                                             if ours.get("usable_cores") not in (None, ours["cores"]) else "")
        blas = "; ".join(f"{b['library']} {b['version']}" + (f" ({b['kernels']} kernels)" if b.get("kernels") else "")
                         + f", {b['threads']} threads [{b['file']}]" for b in ours.get("blas", [])) or "none found"
        extensions = ", ".join(ours.get("vector_extensions", [])) or "none of those we list"
        lines = [f"- CPU: {cpu}, {cores}; LLVM target {ours.get('llvm_cpu') or 'unknown'}",
                 f"- vector extensions: {extensions}", f"- BLAS: {blas}"]
        first = ours.get("first_layer")
        if first:
            lines.append("- first layer's GEMMs: " + ("BLAS" if first["gemm"] == "BLAS" else
                         f"gemm_cpu on Numba's {first['numba_layer']} threads ({first['numba_threads']})"))
        if ours.get("openmp"):
            lines.append("- OpenMP: " + "; ".join(f"{o['library']} {o['version'] or ''}".rstrip()
                                                  + f", {o['threads']} threads" for o in ours["openmp"]))
        if "environment" in ours:
            lines.append("- environment: " + (", ".join(f"{k}={v}" for k, v in ours["environment"].items())
                                              or "no variable steering BLAS, OpenMP or Numba set"))
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in ours.get("versions", {}).items()))
    else:
        cpu = machine_info.get("cpu", {})
        if not cpu:
            return ["## Machine", "", "Not recorded in this run.", ""]
        flags = set(cpu.get("flags", []))
        ident = f"{cpu.get('vendor_id_raw', '?')}, family {cpu.get('family', '?')} model {cpu.get('model', '?')}"
        lines = [f"- CPU: {cpu.get('brand_raw', '?')} ({ident}), {cpu.get('count', '?')} cores",
                 f"- vector extensions: {', '.join(f for f in VECTOR_FLAGS if f in flags) or '-'}",
                 "- BLAS and library versions: not recorded in this run (saved before runs described the machine; "
                 "each row's versions are in its extra_info)"]
    system = " ".join(filter(None, (machine_info.get("system"), machine_info.get("release"))))
    if system:
        lines.append(f"- system: {system}, Python {machine_info.get('python_version', '?')}")
    return ["## Machine", "", *lines, ""]
