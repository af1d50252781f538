"""How work is issued on the stand-in's streams (_stream.py): run now on the legacy stream, queued on any
other stream, or recorded into a capture (``deferral``, ``issue``); and host transfers, refused during
capture (cupy/cuda/memory.pyx ``copy_to_host_async``/``copy_from_host_async``), a D2H copy waiting for its
stream's work first (cupy/_core/core.pyx ``get``: the copy on the given or current stream, then the host
waits for it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _runtime as rt
from ._graph import _Capture
from ._runtime import CUDARuntimeError
from ._stream import Stream, _may_issue, get_current_stream, legacy_waits, run_queued


def capture_of(stream: Stream | None = None) -> _Capture | None:
    """The capture that work issued now on ``stream`` (default: current) goes into, None if none.
    Raises as CUDA does when the stream may take no work."""
    stream = stream or get_current_stream()
    _may_issue(stream)
    capture = stream._capture
    if capture is not None and capture.invalidated:
        raise CUDARuntimeError(rt.cudaErrorStreamCaptureInvalidated)
    return capture


def deferral(stream: Stream | None = None) -> Callable[[Callable[[], None]], None] | None:
    """Where work issued now on ``stream`` (default: current) goes: what takes it for later (the capture's
    graph, or the stream's queue), or None when it runs now, on the legacy stream, whose implicit waits
    this has then done. A node must hold only NumPy views of device memory and frozen host values, never
    stand-in arrays, so freeing an array frees its memory as on a GPU."""
    stream = stream or get_current_stream()
    capture = capture_of(stream)
    if capture is not None:
        return capture.nodes.append
    if stream.ptr != 0:
        return stream._enqueue
    legacy_waits()
    return None


def issue(node: Callable[[], None], stream: Stream | None = None) -> None:
    """Run ``node`` now, or queue or record it, as ``deferral`` says."""
    later = deferral(stream)
    if later is not None:
        later(node)
        return
    with np.errstate(all="ignore"):
        node()


def check_host_transfer(direction: str, stream: Stream | None = None) -> None:
    """cupy/cuda/memory.pyx copy_to_host_async/copy_from_host_async: a RuntimeError before any CUDA call
    when the stream captures (``direction`` is "D2H" or "H2D"). A D2H copy then waits for the stream's
    work (for the legacy stream: its implicit waits), as the host then waits for the copy."""
    stream = stream or get_current_stream()
    if stream.is_capturing():
        raise RuntimeError(f"the current stream is capturing, so {direction} transfers are disallowed")
    if direction == "D2H":
        if stream.ptr == 0:
            legacy_waits()
        else:
            run_queued(stream)
