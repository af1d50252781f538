"""Events of the stand-in (``cupy.cuda.Event``, cupy/cuda/stream.pyx): a mark in a stream's queue (_stream.py).

Recorded outside capture, an event stands for the work queued on its stream before it: ``done`` once that
work has run, ``synchronize`` (and a stream's ``wait_event``) runs it, and nothing queued after the event.
Recorded on the legacy stream, it first waits for the blocking streams, as any action there does. Recorded
on a capturing stream, it belongs to that capture until it ends.
"""

from __future__ import annotations

from typing import Any

from . import _runtime as rt
from ._graph import _capturing
from ._runtime import CUDARuntimeError
from ._stream import _may_issue, get_current_stream, handles, legacy_waits, run_queued


class Event:
    """cupy.cuda.Event(block=False, disable_timing=False, interprocess=False)."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False) -> None:
        if interprocess and not disable_timing:
            raise ValueError("Timing must be disabled for interprocess events")
        self.ptr = next(handles)
        self._capture: Any = None
        self._mark: tuple[Any, int] | None = None  # (stream, how many of its operations come before)

    @property
    def done(self) -> bool:
        # cudaEventQuery returns cudaErrorCapturedEvent for a captured event; CuPy reads "not done"
        if self._captured():
            return False
        return self._mark is None or self._mark[0].finished >= self._mark[1]

    def _captured(self) -> bool:
        return self._capture is not None and any(s._capture is self._capture for s in _capturing)

    def record(self, stream: Any = None) -> None:
        stream = stream or get_current_stream()
        _may_issue(stream)
        self._capture, self._mark = stream._capture, None
        if self._capture is None:
            if stream.ptr == 0:
                legacy_waits()
            self._mark = stream, stream.issued

    def synchronize(self) -> None:
        if self._captured():
            raise CUDARuntimeError(rt.cudaErrorCapturedEvent)
        self._run_up_to()

    def _run_up_to(self) -> None:
        """Runs the work this event follows (for ``synchronize`` and a stream's ``wait_event``)."""
        if self._mark is not None:
            run_queued(*self._mark)
