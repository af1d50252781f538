"""Stream capture's bookkeeping and the ``Graph`` it produces (``cupy.cuda.Graph``), for _stream.py.

A capture records nodes: callables holding NumPy views of device memory and host values frozen at issue
time. ``Graph.launch`` replays them in capture order (cupy/cuda/graph.pyx). The rules here are CUDA's
for a capture in progress, as tests/cupy_tests/cuda_tests/test_graph.py shows them: work on (or a
query of) the legacy stream while a *blocking* stream captures raises cudaErrorStreamCaptureImplicit
(in any capture mode: the legacy stream synchronises with blocking streams, never with non-blocking
ones); cudaDeviceSynchronize during any capture is cudaErrorStreamCaptureUnsupported; cudaMalloc is a
"potentially unsafe" call refused in global and thread-local mode only (CuPy's default is relaxed, in
cupy/cuda/stream.pyx ``begin_capture``). An illegal operation invalidates the capture it touches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _runtime as rt
from ._runtime import CUDARuntimeError

_lock = threading.Lock()
_capturing: list[Any] = []  # streams with an active (possibly invalidated) capture


class _Capture:
    def __init__(self, mode: int, blocking: bool) -> None:
        self.nodes: list[Callable[[], None]] = []
        self.mode, self.blocking, self.thread = mode, blocking, threading.get_ident()
        self.invalidated = False


class Graph:
    """A captured sequence of device work (cupy/cuda/graph.pyx), made only by ``Stream.end_capture``.

    ``launch`` replays the nodes in capture order: host values captured then stay as they were, device
    memory is read as it is now. ``num_nodes`` is a stand-in extension (CuPy has no such attribute): the
    number of operations a replay runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("currently this class cannot be initiated by the user and must be created "
                                  "via stream capture")

    @classmethod
    def _from_nodes(cls, nodes: list[Callable[[], None]]) -> Graph:
        graph = cls.__new__(cls)
        graph._nodes = tuple(nodes)
        return graph

    @property
    def num_nodes(self) -> int:
        return len(self._nodes)

    def _replay(self) -> None:
        with np.errstate(all="ignore"):  # a GPU never warns about overflow or 0/0
            for node in self._nodes:
                node()

    def launch(self, stream: Any = None) -> None:
        """Replays on ``stream`` (default: the current one); into its graph if that stream captures."""
        from ._issue import issue

        issue(self._replay, stream)

    def upload(self, stream: Any = None) -> None:
        """Nothing to upload on the CPU; checks the stream as cudaGraphUpload would."""
        from ._issue import capture_of

        capture_of(stream)


def _check_legacy(invalidate: bool) -> None:
    """Work on (or a query of) the legacy stream while a blocking stream captures: the legacy stream would
    have to wait for captured work, which CUDA refuses (test_graph.py test_null_stream_cannot_capture)."""
    blocking = [s for s in list(_capturing) if s._capture.blocking]
    if blocking:
        if invalidate:
            for s in blocking:
                s._capture.invalidated = True
        raise CUDARuntimeError(rt.cudaErrorStreamCaptureImplicit)


def check_unsafe_call() -> None:
    """cudaMalloc during a capture in global mode (any thread) or thread-local mode (this thread) is a
    "potentially unsafe API call" CUDA refuses, invalidating that capture; relaxed mode allows it."""
    me = threading.get_ident()
    for s in list(_capturing):
        c = s._capture
        if c.mode == rt.streamCaptureModeGlobal or (c.mode == rt.streamCaptureModeThreadLocal and c.thread == me):
            c.invalidated = True
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureUnsupported)


def device_synchronize() -> None:
    """cudaDeviceSynchronize while any stream captures: illegal, and every capture is invalidated."""
    if _capturing:
        for s in list(_capturing):
            s._capture.invalidated = True
        raise CUDARuntimeError(rt.cudaErrorStreamCaptureUnsupported)
