"""``cupy.cuda`` of the stand-in: streams, events, graphs, memory and allocators, ``Device``, and the
``runtime``/``driver`` modules (cupy/cuda/__init__.py lists what CuPy exports here).

``Device`` follows cupy/cuda/device.pyx: ``Device()`` is the current device, ``synchronize`` is
cudaDeviceSynchronize (illegal while any stream captures), ``compute_capability`` a string such as
"90". Names CuPy has here that the stand-in does not cover raise AttributeError saying so.
"""

import types as _types
from typing import Any as _Any

from . import _runtime as runtime
from ._event import Event  # noqa: F401
from ._graph import Graph  # noqa: F401
from ._memory import Memory, MemoryPointer, alloc, get_allocator, set_allocator, using_allocator  # noqa: F401
from ._pool import MemoryPool  # noqa: F401
from ._stream import Stream, get_current_stream  # noqa: F401

driver = _types.ModuleType("cupy.cuda.driver", "CUDA driver API errors (cupy_backends/cuda/api/driver.pyx).")
driver.CUDADriverError = runtime.CUDADriverError  # type: ignore[attr-defined]


class Device:
    """cupy.cuda.Device(device=None): the current device, or the given id."""

    def __init__(self, device: _Any = None) -> None:
        self.id = runtime.getDevice() if device is None else int(device)
        self._previous: list[int] = []

    def __int__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and self.id == other.id

    def __hash__(self) -> int:
        return self.id

    def __enter__(self) -> "Device":
        self._previous.append(runtime.getDevice())
        runtime.setDevice(self.id)
        return self

    def __exit__(self, *exc: _Any) -> None:
        runtime.setDevice(self._previous.pop())

    def use(self) -> "Device":
        runtime.setDevice(self.id)
        return self

    def synchronize(self) -> None:
        runtime.setDevice(self.id)  # an invalid id fails here, as cudaSetDevice does
        runtime.deviceSynchronize()

    @property
    def compute_capability(self) -> str:
        props = runtime.getDeviceProperties(self.id)
        return f"{props['major']}{props['minor']}"

    def mem_info(self) -> tuple[int, int]:
        return runtime.memGetInfo()


def is_available() -> bool:
    return True


def get_device_id() -> int:
    return runtime.getDevice()


def __getattr__(name: str) -> _Any:
    raise AttributeError(f"the CuPy stand-in (tests/cuda_standin) does not cover cupy.cuda.{name}; "
                         "add it there if the project now uses it")
