"""Streams and events of the stand-in (``cupy.cuda.Stream``/``Event``), and how work is issued on them.

Execution model: every stream runs its work eagerly, in issue order, on the calling thread (so the work
of all streams is already done when the host looks, and events and waits order nothing). What is
modelled exactly is stream capture: while a stream captures, the work issued on it is recorded into a
graph instead of run (``issue``), with CUDA's rules for what is illegal meanwhile (the capture
bookkeeping and ``Graph`` are in _graph.py). Sources: ``cupy/cuda/stream.pyx`` (Stream, Event,
begin/end_capture and their defaults), ``tests/cupy_tests/cuda_tests/test_graph.py`` (which errors CUDA
raises when), ``cupy/cuda/memory.pyx`` (host transfers refused during capture) and
``cupy_backends/cuda/api/runtime.pyx`` (``streamIsCapturing`` on an invalidated capture).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _runtime as rt
from ._graph import Graph, _Capture, _capturing, _check_legacy, _lock
from ._runtime import CUDARuntimeError

_handles = itertools.count(0x7F0000001000, 0x100)  # fake cudaStream_t / cudaEvent_t values
_tls = threading.local()


class Event:
    """cupy/cuda/stream.pyx ``Event``. Work runs eagerly, so an event recorded outside capture is done at
    once; one recorded on a capturing stream belongs to that capture until it ends."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        if interprocess and not disable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self.ptr = next(_handles)
        self._capture: _Capture | None = None

    @property
    def done(self) -> bool:
        # cudaEventQuery returns cudaErrorCapturedEvent for a captured event; CuPy reads "not done"
        return not self._captured()

    def _captured(self) -> bool:
        return self._capture is not None and any(s._capture is self._capture for s in _capturing)

    def record(self, stream: Stream | None = None) -> None:
        stream = stream or get_current_stream()
        _may_issue(stream)
        self._capture = stream._capture

    def synchronize(self) -> None:
        if self._captured():
            raise CUDARuntimeError(rt.cudaErrorCapturedEvent)


class Stream:
    """cupy/cuda/stream.pyx ``Stream``: ``Stream.null`` (ptr 0) is the legacy default stream, current
    until a ``with stream:`` block or ``use()`` changes it (per thread)."""

    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: int | None = None) -> None:
        if ptds and not null:
            raise NotImplementedError("the CuPy stand-in does not model the per-thread default stream")
        self.ptr = 0 if null else next(_handles)
        self.device_id = -1 if null else rt.getDevice()
        self._non_blocking = bool(non_blocking) and not null
        self._capture: _Capture | None = None

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
        return True

    def synchronize(self) -> None:
        """Nothing is pending (work runs eagerly); during capture, illegal as CUDA makes it."""
        _may_issue(self)
        if self._capture is not None:
            self._capture.invalidated = True
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureUnsupported)

    def record(self, event: Event | None = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: Event) -> None:
        """Orders nothing (eager streams). During capture CUDA refuses waiting on an event recorded outside
        it (cudaErrorStreamCaptureIsolation, the capture invalidated); cross-stream capture (fork/join) is
        not modelled."""
        _may_issue(self)
        captured = event._capture if event._captured() else None
        if captured is not None and captured is not self._capture:
            raise NotImplementedError("the CuPy stand-in does not model capture across streams (an event "
                                      "recorded during one capture waited on by another stream)")
        if self._capture is not None and captured is None:
            self._capture.invalidated = True
            raise CUDARuntimeError(rt.cudaErrorStreamCaptureIsolation)

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


Stream.null = Stream(null=True)


def _state() -> threading.local:
    if not hasattr(_tls, "stack"):
        _tls.stack, _tls.current = [Stream.null], Stream.null
    return _tls


def get_current_stream(device_id: int = -1) -> Stream:
    return _state().current


def _may_issue(stream: Stream) -> None:
    if stream.ptr == 0:
        _check_legacy(invalidate=True)


def capture_of(stream: Stream | None = None) -> _Capture | None:
    """The capture that work issued now on ``stream`` (default: current) goes into, None to run it now.
    Raises as CUDA does when the stream may take no work."""
    stream = stream or get_current_stream()
    _may_issue(stream)
    capture = stream._capture
    if capture is not None and capture.invalidated:
        raise CUDARuntimeError(rt.cudaErrorStreamCaptureInvalidated)
    return capture


def issue(node: Callable[[], None], stream: Stream | None = None) -> None:
    """Run ``node`` now, or record it if the stream captures. ``node`` must hold only NumPy views of device
    memory and frozen host values, never stand-in arrays, so freeing an array frees its memory as on a GPU."""
    capture = capture_of(stream)
    if capture is not None:
        capture.nodes.append(node)
        return
    with np.errstate(all="ignore"):
        node()


def check_host_transfer(direction: str, stream: Stream | None = None) -> None:
    """cupy/cuda/memory.pyx copy_to_host_async/copy_from_host_async: a RuntimeError before any CUDA call
    when the stream captures (``direction`` is "D2H" or "H2D")."""
    stream = stream or get_current_stream()
    if stream.is_capturing():
        raise RuntimeError(f"the current stream is capturing, so {direction} transfers are disallowed")
