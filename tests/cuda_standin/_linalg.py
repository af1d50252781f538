"""``matmul``/``dot``/``@`` of the stand-in and ``cupy._core._routines_linalg``'s compute-type switch.

Rules from cupy/_core/_routines_linalg.pyx: floating-point products go to cuBLAS (gemm), except an empty
operand (a fill) and a vector dot product (a reduction kernel); integer products run CuPy's own kernel.
cuBLAS is refused during stream capture before anything is issued, with cupy_backends/cuda/libs/
cublas.pyx ``setStream``'s ``NotImplementedError('calling cuBLAS API during stream capture is currently
unsupported')`` (tests/cupy_tests/cuda_tests/test_graph.py test_stream_capture_failure_cublas). 0-d
operands are refused; ``dot``'s ``out`` must be C-contiguous and of the result's dtype. With
``COMPUTE_TYPE_TF32`` set for float32 (``get_compute_type`` starts from ``CUPY_TF32``), float32 inputs
are rounded to TF32 (10-bit mantissa) before the product, as tensor cores do.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _stream
from ._array import ndarray, run_into, run_new
from ._ufuncs import device

(COMPUTE_TYPE_TBD, COMPUTE_TYPE_DEFAULT, COMPUTE_TYPE_PEDANTIC, COMPUTE_TYPE_FP16, COMPUTE_TYPE_FP32,
 COMPUTE_TYPE_FP64, COMPUTE_TYPE_BF16, COMPUTE_TYPE_TF32) = range(8)
_compute_types = [COMPUTE_TYPE_TBD] * 4  # bfloat16, float16, float32, float64


def to_compute_type_index(dtype: Any) -> int:
    char = np.dtype(dtype).char
    if char == "e":
        return 1
    if char in "fF":
        return 2
    if char in "dD":
        return 3
    raise TypeError(f"dtype is not supported: {dtype}")


def set_compute_type(dtype: Any, compute_type: int) -> None:
    if compute_type not in range(8):
        raise ValueError(f"Unknown compute type: {compute_type}")
    _compute_types[to_compute_type_index(dtype)] = compute_type  # the stand-in's device is compute 9.0


def get_compute_type(dtype: Any) -> int:
    index = to_compute_type_index(dtype)
    if _compute_types[index] == COMPUTE_TYPE_TBD:
        tf32 = np.dtype(dtype).char in "fF" and int(os.getenv("CUPY_TF32", "0")) > 0
        set_compute_type(dtype, COMPUTE_TYPE_TF32 if tf32 else COMPUTE_TYPE_DEFAULT)
    return _compute_types[index]


def _tf32(x: np.ndarray) -> np.ndarray:
    """float32 rounded to nearest at TF32's 10 mantissa bits (the low 13 bits cleared)."""
    bits = x.view(np.uint32).astype(np.uint64)
    return ((bits + 0x1000) & 0xFFFFE000).astype(np.uint32).view(np.float32)


def _product(a: ndarray, b: ndarray, out: ndarray | None, np_func: Any) -> ndarray:
    a, b = device(a, "a"), device(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("Scalar operands are not allowed, use '*' instead")
    dtype = np.result_type(a.dtype, b.dtype)
    k = a.shape[-1]
    vector_dot = k and a.size // k == 1 and b.size // k == 1 and max(a.ndim, b.ndim) <= 2
    uses_cublas = dtype.kind in "fc" and a.size and b.size and not vector_dot
    if uses_cublas and _stream.get_current_stream().is_capturing():
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")
    tf32 = uses_cublas and dtype == np.float32 and get_compute_type(np.float32) == COMPUTE_TYPE_TF32

    def compute(x: np.ndarray, y: np.ndarray, **out_kw: Any) -> Any:
        if tf32:
            x, y = _tf32(x.astype(np.float32)), _tf32(y.astype(np.float32))
        return np_func(x, y, **out_kw)

    if out is None:
        return run_new(compute, a._a, b._a)
    return run_into(lambda dst, x, y: compute(x, y, out=dst), device(out, "out"), a._a, b._a)


def matmul(a: ndarray, b: ndarray, out: ndarray | None = None) -> ndarray:
    return _product(a, b, out, np.matmul)


def dot(a: ndarray, b: ndarray, out: ndarray | None = None) -> ndarray:
    if out is not None:
        if np.result_type(a.dtype, b.dtype) != out.dtype:
            raise ValueError("Not supported dtype combination.")
        if not out._a.flags.c_contiguous:
            raise ValueError("Output array must be C-contiguous")
    return _product(a, b, out, np.dot)
