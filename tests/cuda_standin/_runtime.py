"""``cupy.cuda.runtime`` and ``cupy.cuda.driver`` of the stand-in: the CUDA error classes, the device
queries the project makes, and the constants of stream capture.

Error classes and their message format follow ``cupy_backends/cuda/api/runtime.pyx`` and ``driver.pyx``
(``CUDARuntimeError(status)`` subclasses RuntimeError and reads ``"<name>: <string>"``, the texts of
``cudaGetErrorName``/``cudaGetErrorString``). The stand-in has one device, 0.
"""

from __future__ import annotations

import threading
from typing import Any

# cudaError_t values and their names and strings, as the CUDA runtime reports them.
_ERRORS: dict[int, tuple[str, str]] = {
    1: ("cudaErrorInvalidValue", "invalid argument"),
    101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
    401: ("cudaErrorIllegalState", "the operation cannot be performed in the present state"),
    900: ("cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing"),
    901: ("cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error during capture"),
    902: ("cudaErrorStreamCaptureMerge", "operation would result in a merge of separate capture sequences"),
    903: ("cudaErrorStreamCaptureUnmatched", "capture was not ended in the same stream as it began"),
    904: ("cudaErrorStreamCaptureUnjoined", "capturing stream has unjoined work"),
    905: ("cudaErrorStreamCaptureIsolation", "dependency created on uncaptured work in another stream"),
    906: ("cudaErrorStreamCaptureImplicit",
          "operation would make the legacy stream depend on a capturing blocking stream"),
    907: ("cudaErrorCapturedEvent", "operation not permitted on an event last recorded in a capturing stream"),
}
cudaErrorInvalidValue, cudaErrorInvalidDevice, cudaErrorIllegalState = 1, 101, 401
(cudaErrorStreamCaptureUnsupported, cudaErrorStreamCaptureInvalidated, cudaErrorStreamCaptureMerge,
 cudaErrorStreamCaptureUnmatched, cudaErrorStreamCaptureUnjoined, cudaErrorStreamCaptureIsolation,
 cudaErrorStreamCaptureImplicit, cudaErrorCapturedEvent) = range(900, 908)

# Stream capture modes and stream handles (cupy_backends/cuda/api/runtime.pxd).
streamCaptureModeGlobal, streamCaptureModeThreadLocal, streamCaptureModeRelaxed = 0, 1, 2
streamLegacy, streamPerThread = 1, 2
streamDefault, streamNonBlocking = 0, 1

TOTAL_MEMORY = 16 * 2**30  # what memGetInfo reports as the device's total (a plausible 16 GiB card)
DEVICE_NAME = "CuPy stand-in (NumPy on the CPU)"
COMPUTE_CAPABILITY = (9, 0)  # >= 8.0, so TF32 is accepted as on the GPUs the project targets


class CUDARuntimeError(RuntimeError):
    """cupy_backends/cuda/api/runtime.pyx: ``CUDARuntimeError(status)``, message ``name: string``."""

    def __init__(self, status: int) -> None:
        self.status = status
        name, text = _ERRORS.get(status, (f"cudaError{status}", "unknown error"))
        super().__init__(f"{name}: {text}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.status,)


# CUresult values the stand-in raises, with cuGetErrorName/cuGetErrorString's texts.
_DRIVER_ERRORS: dict[int, tuple[str, str]] = {1: ("CUDA_ERROR_INVALID_VALUE", "invalid argument"),
                                              500: ("CUDA_ERROR_NOT_FOUND", "named symbol not found")}
CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_NOT_FOUND = 1, 500


class CUDADriverError(RuntimeError):
    """cupy_backends/cuda/api/driver.pyx: raised where the driver API fails: an unknown kernel name
    (cuModuleGetFunction), a launch or a function attribute out of bounds (cuLaunchKernel, cuFuncSetAttribute)."""

    def __init__(self, status: int, name: str | None = None, text: str | None = None):
        self.status = status
        known = _DRIVER_ERRORS.get(status, (f"CUDA_ERROR_{status}", "unknown error"))
        super().__init__(f"{name or known[0]}: {text or known[1]}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.status,) + tuple(str(self).split(": ", 1))


_device = threading.local()  # the current device per thread, as cudaSetDevice keeps it


def getDeviceCount() -> int:
    return 1


def getDevice() -> int:
    return getattr(_device, "id", 0)


def setDevice(device: int) -> None:
    if not 0 <= int(device) < getDeviceCount():
        raise CUDARuntimeError(cudaErrorInvalidDevice)
    _device.id = int(device)


def getDeviceProperties(device: int) -> dict[str, Any]:
    """A few of the keys CuPy's dict holds; ``name`` is bytes, as in CuPy."""
    if not 0 <= int(device) < getDeviceCount():
        raise CUDARuntimeError(cudaErrorInvalidDevice)
    return {"name": DEVICE_NAME.encode(), "totalGlobalMem": TOTAL_MEMORY, "major": COMPUTE_CAPABILITY[0],
            "minor": COMPUTE_CAPABILITY[1], "multiProcessorCount": 1, "warpSize": 32,
            "maxThreadsPerBlock": 1024, "sharedMemPerBlock": 48 * 1024, "sharedMemPerBlockOptin": 227 * 1024}


def memGetInfo() -> tuple[int, int]:
    """(free, total): free is the total less every byte the stand-in holds, pools' cached blocks included."""
    from ._memory import bytes_held

    return TOTAL_MEMORY - bytes_held(), TOTAL_MEMORY


def deviceSynchronize() -> None:
    """Illegal during any capture (_graph.py); otherwise every stream's queued work runs."""
    from ._graph import device_synchronize
    from ._stream import run_all

    device_synchronize()
    run_all()


def runtimeGetVersion() -> int:
    return 12080


def driverGetVersion() -> int:
    return 12080
