"""Streams of the stand-in (``cupy.cuda.Stream``), their queues of work, and when the queues run (work is
issued onto them in _issue.py; events, marks in a queue, are in _event.py).

Execution model: the legacy default stream (``Stream.null``) runs its work at once, on the calling thread;
every other stream queues its work and runs it, in issue order, only when something waits for it: its
``synchronize``, a host read on it (a D2H copy, then the host waits), an event recorded on it that is
synchronized or waited for by another stream (up to that event only), or ``cudaDeviceSynchronize``. So
work another stream never waited for has not happened yet, and a missing wait reads stale memory instead
of passing because everything ran in issue order. The legacy stream synchronises with blocking streams as
CUDA's does ("Stream synchronization behavior" in the CUDA driver API documentation: before an action on
the legacy stream, a kernel, a copy, an event record or wait, the blocking streams' earlier work runs; their
later work comes after it by construction); non-blocking streams never synchronise with it. CuPy's
streams are blocking unless made with ``non_blocking=True`` (cupy/cuda/stream.pyx ``Stream.__init__``).

Stream capture records the work issued on the capturing stream into a graph instead (the bookkeeping and
``Graph`` are in _graph.py), with CUDA's rules for what is illegal meanwhile. Sources:
``cupy/cuda/stream.pyx`` (Stream, begin/end_capture and their defaults), ``tests/cupy_tests/cuda_tests/
test_graph.py`` (which errors CUDA raises when) and ``cupy_backends/cuda/api/runtime.pyx``
(``streamIsCapturing`` on an invalidated capture).
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _runtime as rt
from ._graph import Graph, _Capture, _capturing, _check_legacy, _lock
from ._runtime import CUDARuntimeError

handles = itertools.count(0x7F0000001000, 0x100)  # fake cudaStream_t / cudaEvent_t values
_tls = threading.local()
_run_lock = threading.RLock()  # queues change and run under it
_queued: dict[int, Stream] = {}  # the streams holding queued work, by handle


class Stream:
    """cupy/cuda/stream.pyx ``Stream``: ``Stream.null`` (ptr 0) is the legacy default stream, current
    until a ``with stream:`` block or ``use()`` changes it (per thread)."""

    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: int | None = None) -> None:
        if ptds and not null:
            raise NotImplementedError("the CuPy stand-in does not model the per-thread default stream")
        self.ptr = 0 if null else next(handles)
        self.device_id = -1 if null else rt.getDevice()
        self._non_blocking = bool(non_blocking) and not null
        self._capture: _Capture | None = None
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self.issued = self.finished = 0  # operations queued on this stream so far, and run so far

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and self.ptr == other.ptr

    def __hash__(self) -> int:
        return self.ptr

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ptr} (device {self.device_id})>"

    def __enter__(self) -> Stream:
        state = _state()
        state.stack.append(self)
        state.current = self
        return self

    def __exit__(self, *exc: Any) -> None:
        state = _state()
        state.stack.pop()
        state.current = state.stack[-1]  # as CuPy's pop_stream: the stack's top, not what use() set

    def use(self) -> Stream:
        """Makes this stream current without entering it (a later ``with`` exit forgets it, as in CuPy)."""
        _state().current = self
        return self

    @property
    def is_non_blocking(self) -> bool:
        return self._non_blocking

    @property
    def done(self) -> bool:
        """cudaStreamQuery: during capture it is illegal, invalidates the capture, and reads "not done"."""
        if self._capture is not None:
            self._capture.invalidated = True
            return False
        return not self._queue

    def synchronize(self) -> None:
        """Runs the queued work; during capture, illegal as CUDA makes it."""
        _may_issue(self)
        if self._capture is not None:
            self._capture.invalidated = True
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureUnsupported)
        run_queued(self)

    def record(self, event: Any = None) -> Any:
        from ._event import Event

        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: Any) -> None:
        """Later work on this stream comes after the work ``event`` follows, which runs now. During capture
        CUDA refuses waiting on an event recorded outside it (cudaErrorStreamCaptureIsolation, the capture
        invalidated); cross-stream capture (fork/join) is not modelled."""
        _may_issue(self)
        captured = event._capture if event._captured() else None
        if captured is not None and captured is not self._capture:
            raise NotImplementedError("the CuPy stand-in does not model capture across streams (an event "
                                      "recorded during one capture waited on by another stream)")
        if self._capture is not None and captured is None:
            self._capture.invalidated = True
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureIsolation)
        if self._capture is None:
            if self.ptr == 0:
                legacy_waits()
            event._run_up_to()

    def begin_capture(self, mode: int | None = None) -> None:
        """CuPy's default mode is relaxed (stream.pyx): pool growth by cudaMalloc stays legal."""
        if self.ptr in (0, 1):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if self._capture is not None:
            raise CUDARuntimeError(rt.cudaErrorIllegalState)
        mode = rt.streamCaptureModeRelaxed if mode is None else mode
        with _lock:
            self._capture = _Capture(mode, not self._non_blocking)
            _capturing.append(self)

    def end_capture(self) -> Graph:
        capture = self._capture
        if capture is None:
            raise CUDARuntimeError(rt.cudaErrorIllegalState)
        with _lock:
            self._capture = None
            _capturing.remove(self)
        if capture.invalidated:
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureInvalidated)
        return Graph._from_nodes(capture.nodes)

    def is_capturing(self) -> bool:
        if self.ptr == 0:
            _check_legacy(invalidate=False)
            return False
        if self._capture is not None and self._capture.invalidated:
            raise RuntimeError("the stream was capturing, but an error has invalidated the capture sequence")
        return self._capture is not None

    def _enqueue(self, node: Callable[[], None]) -> None:
        with _run_lock:
            self._queue.append(node)
            self.issued += 1
            _queued[self.ptr] = self


Stream.null = Stream(null=True)


def _state() -> threading.local:
    if not hasattr(_tls, "stack"):
        _tls.stack, _tls.current = [Stream.null], Stream.null
    return _tls


def get_current_stream(device_id: int = -1) -> Stream:
    return _state().current


def run_queued(stream: Stream, upto: int | None = None) -> None:
    """Runs ``stream``'s queued work in issue order, up to its ``upto``-th operation (default: all)."""
    with _run_lock:
        try:
            while stream._queue and (upto is None or stream.finished < upto):
                node = stream._queue.popleft()
                stream.finished += 1
                with np.errstate(all="ignore"):  # a GPU never warns about overflow or 0/0
                    node()
        finally:
            if not stream._queue:
                _queued.pop(stream.ptr, None)


def legacy_waits() -> None:
    """What an action on the legacy stream waits for first: the queued work of every blocking stream."""
    with _run_lock:
        for stream in list(_queued.values()):
            if not stream._non_blocking:
                run_queued(stream)


def run_all() -> None:
    """Every stream's queued work (cudaDeviceSynchronize)."""
    with _run_lock:
        for stream in list(_queued.values()):
            run_queued(stream)


def _may_issue(stream: Stream) -> None:
    if stream.ptr == 0:
        _check_legacy(invalidate=True)
