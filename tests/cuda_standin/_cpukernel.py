"""One kernel of a library the CPU runtime built (``CpuKernel``): its launch checks, as cuLaunchKernel and
cuFuncSetAttribute make them, and the call into the library.

Shared memory limits (CUDA C Programming Guide, "Shared Memory" of compute capability 9.0; the driver
API's CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES): a block gets 48 KiB of shared memory, static and
dynamic together, unless the kernel opts in by raising its ``max_dynamic_shared_size_bytes`` (48 KiB less
its static shared memory until then), which may reach the device's opt-in maximum (227 KiB on sm_90) less
the static part; a launch asking for more dynamic shared memory than that attribute is an invalid value.
Static shared memory over 48 KiB is ptxas's error, raised when the library loads (``cpu_runtime``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

SHARED_PER_BLOCK = 48 * 1024  # without an opt-in; ptxas's limit for static shared memory
SHARED_PER_BLOCK_OPTIN = 232448  # sm_90's opt-in maximum; the header's kMaxDynamicShared agrees
MAX_DYNAMIC_SHARED = SHARED_PER_BLOCK_OPTIN


class KernelError(RuntimeError):
    """A kernel failed while running: a deadlock, an invalid warp collective, __trap or assert."""


class CpuKernel:
    """``params``: the kernel's parameters (cuda_standin._cusource.Param); ``fn``: its launcher in ``lib``;
    ``static_shared``: bytes of its static ``__shared__`` variables; ``poison``: (address, size) of the
    static shared memory poisoned at each block's start (its own, and that of device functions)."""

    def __init__(self, name: str, params: tuple[Any, ...], fn: Any, lib: ctypes.CDLL, static_shared: int = 0,
                 poison: Sequence[tuple[int, int]] = ()) -> None:
        self.name, self.params, self._fn, self._lib = name, params, fn, lib
        self._sizes = tuple(p.size for p in params)
        self._offsets = tuple(sum(self._sizes[:i]) for i in range(len(params)))
        self._pointers = ctypes.c_void_p * max(1, len(params))
        self.shared_size_bytes = static_shared
        self._max_dynamic = SHARED_PER_BLOCK - static_shared
        flat = [v for region in poison for v in region]
        self._poison, self._npoison = (ctypes.c_ulonglong * max(1, len(flat)))(*flat), len(poison)

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self._max_dynamic

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        """cuFuncSetAttribute: at most the device's opt-in maximum less the kernel's static shared memory."""
        top = SHARED_PER_BLOCK_OPTIN - self.shared_size_bytes
        if not 0 <= int(value) <= top:
            raise ValueError(f"{self.name}: max_dynamic_shared_size_bytes {value} is outside [0, {top}] (the "
                             f"opt-in maximum {SHARED_PER_BLOCK_OPTIN} less {self.shared_size_bytes} static bytes)")
        self._max_dynamic = int(value)

    def _dims(self, what: str, dims: tuple[int, ...], top: tuple[int, int, int]) -> ctypes.Array:
        full = (*dims, 1, 1)[:3]
        if not 1 <= len(dims) <= 3 or not all(1 <= d <= t for d, t in zip(full, top)):
            raise ValueError(f"{self.name}: {what} {tuple(dims)} needs 1 to 3 dimensions, each from 1 to {top}")
        return (ctypes.c_uint * 3)(*full)

    def check(self, grid: tuple[int, ...], block: tuple[int, ...], shared_mem: int = 0) -> tuple[Any, Any]:
        """The launch configuration as cuLaunchKernel checks it (ValueError where it fails with
        CUDA_ERROR_INVALID_VALUE); returns grid and block as the launcher takes them."""
        grid3 = self._dims("grid", grid, (2**31 - 1, 65535, 65535))
        block3 = self._dims("block", block, (1024, 1024, 64))
        if block3[0] * block3[1] * block3[2] > 1024:
            raise ValueError(f"{self.name}: block {tuple(block)} has more than 1024 threads")
        if not 0 <= shared_mem <= self._max_dynamic:
            raise ValueError(f"{self.name}: shared_mem {shared_mem} is outside [0, {self._max_dynamic}], the "
                             f"kernel's max_dynamic_shared_size_bytes ({SHARED_PER_BLOCK} less its "
                             f"{self.shared_size_bytes} static bytes unless raised)")
        return grid3, block3

    def launch(self, grid: tuple[int, ...], block: tuple[int, ...], args: Sequence[bytes],
               shared_mem: int = 0) -> None:
        grid3, block3 = self.check(grid, block, shared_mem)
        if len(args) != len(self.params):
            raise ValueError(f"{self.name} takes {len(self.params)} arguments "
                             f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        packed = b"".join(args)
        if len(packed) != sum(self._sizes) or any(len(a) != n for a, n in zip(args, self._sizes)):
            i, p = next((i, p) for i, (p, a) in enumerate(zip(self.params, args)) if len(a) != p.size)
            raise ValueError(f"{self.name}: argument {i} ({p.ctype} {p.name}) takes {p.size} bytes, "
                             f"got {len(args[i])}")
        base = ctypes.cast(ctypes.c_char_p(packed), ctypes.c_void_p).value  # bytes are only read
        pointers = self._pointers(*(base + o for o in self._offsets))
        if self._fn(grid3, block3, shared_mem, pointers, self._poison, self._npoison):
            raise KernelError(f"{self.name}: {self._lib.cuda_on_cpu_error().decode()}")
