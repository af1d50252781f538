"""The fused whole-step CUDA C kernels (``step_cuda.cu``): their parameters (declared here once, see
``signatures``), source, names, tile sizes, launch shapes, the order one training step launches them in,
and the rule for when they replace the cuBLAS step.

A step of 784-256-10 is five launches (``dense_forward``, ``output_loss``, ``grad_update`` twice,
``finish_step``) instead of ~25 CuPy calls, with no cuBLAS call, so it can be captured as one CUDA graph;
each further hidden layer adds a ``dense_forward``, a ``dense_backward`` and a ``grad_update`` (3H + 2
launches for H hidden layers, ``launch_order``).
This module imports neither CuPy nor anything of ``mnist_accel``.

Tiles: 32 x 32 outputs per block of 16 x 16 threads, 2 x 2 outputs per thread, k-steps of 32. At MNIST
shapes the GEMMs are small: with 64 x 64 tiles, 784-256 at batch 128 is 8 blocks on the H200's 132 SMs,
so the step is bound by occupancy and latency, not by shared-memory bandwidth; 32 x 32 tiles give four
times the blocks (32 there, 128 for the default 784-512 at batch 256), and 8 warps per block keep all
four schedulers of an SM busy. Where a 2 x 2 micro-tile's one FMA per shared load would start to bind
(large batches, wide layers), ``use_fused`` hands the step back to cuBLAS.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from .signatures import arguments as _arguments, declare, render, templated

# Each kernel's parameters, the one place they are written: source() puts them into step_cuda.cu, and a
# launch names its arguments after them (``arguments``). T is the float type of the templated kernels.
_BATCH = "const long long* order, const long long* k, int bs"  # step *k's row r is order[*k * bs + r]
# A hidden layer's activation and its dropout mask, whose key is keys[*k * n_keys + layer].
_HIDDEN = "int act, const unsigned* keys, int n_keys, int layer, unsigned threshold, T scale, int use_dropout"
PARAMS = {
    "dense_forward": declare(f"const T* x, const unsigned char* pixels, int x_kind, {_BATCH}, const T* W, "
                             f"const T* b, int use_bias, T* y, int n, int f, int m, {_HIDDEN}"),
    # a row's class label (labels) or float targets (targets, m per row): the other is null
    "output_loss": declare(f"const T* h, const T* W, const T* b, int use_bias, const int* labels, const T* targets, "
                           f"{_BATCH}, int n, int f, int m, int loss, T* dz, double* row_loss, int* row_hit, T* delta, "
                           f"{_HIDDEN}"),
    "dense_backward": declare("const T* delta, const T* W, const T* h_prev, T* delta_prev, int n, int f, int m, "
                              f"const long long* k, {_HIDDEN}"),
    "grad_update": declare(f"const T* x, const unsigned char* pixels, int x_kind, {_BATCH}, const T* d, int n, int f, "
                           "int m, T* W, T* W_s1, T* W_s2, T* b, T* b_s1, T* b_s2, int use_bias, const T* sched, "
                           "int opt, T beta1, T beta1c, T beta2, T beta2c, T wd"),
    "finish_step": declare("const double* row_loss, const int* row_hit, int n, long long* k, double* step_loss, "
                           "double* loss_sum, double* hits"),
}
KERNELS = tuple(k for k, p in PARAMS.items() if templated(p))  # at float and double
UNTEMPLATED = tuple(k for k, p in PARAMS.items() if not templated(p))  # finish_step: double and integer only

TILE, KT, THREADS_1D = 32, 32, 16  # step_cuda.cu's constants (a test keeps them equal)
MICRO = TILE // THREADS_1D
OL_ROWS, OL_MAX_M = 16, 16  # output_loss: rows per block, most outputs it takes
OL_THREADS = OL_ROWS * OL_MAX_M
FINISH_THREADS = 256

INPUT_KINDS = {"dense": 0, "pixels": 1, "features": 2}  # a layer's input: buffer, gathered uint8, gathered T

FUSED_MAX_WIDTH = 2048  # widest hidden layer the tile sizes were chosen for
# Largest step (FLOPs, see step_flops) that the fused kernels take: past it cuBLAS's faster GEMMs repay
# their launches outside a graph. On paper for an H200 (the cost model in docs/benchmarks.md), to
# calibrate on the device.
FUSED_MAX_STEP_FLOPS = {"float32": 2e9, "float64": 1e9}


def source() -> str:
    """The kernels' complete source, as every compiler of them (NVRTC, nvcc, the tests' CPU runtime) takes it."""
    return render(resources.files(__package__).joinpath("step_cuda.cu").read_text(), PARAMS)


def arguments(kernel: str, dtype: Any, **values: Any) -> tuple:
    """``kernel``'s launch arguments, by the names of ``PARAMS[kernel]``: TypeError for a missing or an
    unexpected name; numbers converted to their parameter's width (T: ``dtype``)."""
    return _arguments(kernel, PARAMS[kernel], dtype, values)


def name_expressions() -> list[str]:
    """Every kernel as NVRTC's name expressions: the templated ones at float and double."""
    return [f"{k}<{t}>" for k in KERNELS for t in ("float", "double")] + list(UNTEMPLATED)


def kernel_name(kernel: str, dtype) -> str:
    if kernel in UNTEMPLATED:
        return kernel
    return f"{kernel}<{'float' if np.dtype(dtype) == np.float32 else 'double'}>"


def update_constants(optimizer: str, momentum: float, beta1: float, beta2: float) -> tuple[float, ...]:
    """grad_update's (beta1, beta1c, beta2, beta2c): the momentum optimizers' mu in the first place; the
    complements are 1 - beta in double, so that cast to the float type they round as optim.update's
    (1 - cfg.beta1) does."""
    if optimizer == "adam":
        return beta1, 1.0 - beta1, beta2, 1.0 - beta2
    return (momentum if optimizer in ("momentum", "nesterov", "classical-momentum") else 0.0), 0.0, 0.0, 0.0


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


Shape = tuple[tuple[int, int, int], tuple[int, int, int]]  # (grid, block)


def dense_forward_shape(n: int, m: int) -> Shape:
    """(grid, block) for ``n`` rows of a layer ``m`` wide."""
    return (_cdiv(n, TILE), _cdiv(m, TILE), 1), (THREADS_1D, THREADS_1D, 1)


def output_loss_shape(n: int) -> Shape:
    return (_cdiv(n, OL_ROWS), 1, 1), (OL_THREADS, 1, 1)


def dense_backward_shape(n: int, f: int) -> Shape:
    """(grid, block) for the delta of ``n`` rows of the ``f``-wide layer below."""
    return (_cdiv(n, TILE), _cdiv(f, TILE), 1), (THREADS_1D, THREADS_1D, 1)


def grad_update_shape(f: int, m: int) -> Shape:
    """(grid, block) for an ``f`` x ``m`` weight matrix (and its bias)."""
    return (_cdiv(f, TILE), _cdiv(m, TILE), 1), (THREADS_1D, THREADS_1D, 1)


def finish_step_shape() -> Shape:
    return (1, 1, 1), (FINISH_THREADS, 1, 1)


def launch_order(n_layers: int) -> list[tuple[str, int]]:
    """(kernel, weight layer) for one step of a net of ``n_layers`` weight layers (at least 2).

    A layer's weights are read by the kernel that back-propagates through them (``output_loss`` for
    the last, ``dense_backward`` for the others) before its ``grad_update`` changes them; a
    ``grad_update`` reads the layer's input, which no later launch of the step overwrites.
    """
    if n_layers < 2:
        raise ValueError("the fused step needs at least one hidden layer")
    last = n_layers - 1
    order = [("dense_forward", i) for i in range(last)] + [("output_loss", last), ("grad_update", last)]
    for i in range(last - 1, 0, -1):
        order += [("dense_backward", i), ("grad_update", i)]
    return order + [("grad_update", 0), ("finish_step", -1)]


def step_flops(batch: int, sizes: list[int]) -> int:
    """Multiply-adds x 2 of one step: forward and weight gradient for every layer, the delta for all but
    the first (the elementwise work and the update are a few percent at these shapes)."""
    products = [f * m for f, m in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (3 * sum(products) - products[0])


def use_fused(batch: int, sizes: list[int], dtype) -> bool:
    """Whether a step of ``batch`` rows through layer ``sizes`` ([n_in, hidden..., n_out]) runs on these
    kernels (captured as one graph) rather than on cuBLAS, launched call by call.

    The rule: at least one hidden layer, at most ``OL_MAX_M`` outputs (``output_loss`` holds a row's
    outputs in registers), no hidden layer wider than ``FUSED_MAX_WIDTH``, and a step of at most
    ``FUSED_MAX_STEP_FLOPS[dtype]``: beyond that, cuBLAS's faster GEMMs win back its launch overhead.
    784-512-10 at batch 256 (0.42 GFLOP) is fused; 784-2048-10 at batch 4096 (27 GFLOP) is not.
    """
    if len(sizes) < 3 or sizes[-1] > OL_MAX_M or max(sizes[1:-1]) > FUSED_MAX_WIDTH or batch < 1:
        return False
    return step_flops(batch, sizes) <= FUSED_MAX_STEP_FLOPS[np.dtype(dtype).name]


# The options this module's kernels are compiled with by NVRTC (CudaOps gives them to cupy.RawModule, which adds
# its own; tests/kernels/test_compilers.py compiles with the same).
NVRTC_OPTIONS = ("-std=c++17",)
