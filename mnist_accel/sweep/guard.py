"""Ctrl-C and a job scheduler's stop signals, held back while a sweep's driver talks to its study's storage.

A stop raises its exception wherever the main thread happens to be. Landing inside a database commit, it
leaves the storage's session unusable, so the driver could no longer mark its trials interrupted or write
its results, and the command ended with a storage error instead of saying how it was stopped. Inside
``Guard.installed()``, a storage method the main thread has begun finishes first, and the stop is raised
as it returns; anywhere else (waiting for trials, training in this process) it is raised at once.
"""

from __future__ import annotations

import functools
import inspect
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mnist_accel.training.signals import STOP_SIGNALS


class Guard:
    def __init__(self) -> None:
        self.depth = 0  # storage calls the main thread is inside
        self.pending: BaseException | None = None
        self.previous: dict[int, Callable[..., Any]] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        try:
            self.previous[signum](signum, frame)  # Ctrl-C's KeyboardInterrupt, the command line's Stopped
        except BaseException as exc:
            if self.depth == 0:
                raise
            if self.pending is None:
                self.pending = exc

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Within the block, the handlers in force (Python's Ctrl-C, the command line's stop handlers) raise
        only between storage calls. Only the main thread can set handlers; elsewhere nothing changes."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, *STOP_SIGNALS):
                previous = signal.getsignal(signum)
                if callable(previous):  # an ignored signal stays ignored, a default one stays fatal
                    self.previous[signum] = previous
                    signal.signal(signum, self._handler)
        try:
            yield
        finally:
            for signum, previous in self.previous.items():
                signal.signal(signum, previous)
            self.previous.clear()

    def _held(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def held(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():  # the heartbeat thread
                return method(*args, **kwargs)
            self.depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0 and self.pending is not None:
                    stop, self.pending = self.pending, None
                    raise stop

        return held

    def shield(self, storage: Any) -> Any:
        """Hold every method of this storage object (not of its class), its private ones too: Optuna's
        cache calls those directly. Not for a DaskStorage: it travels to the workers, and each of its calls
        is a message the scheduler completes anyway."""
        for name, _ in inspect.getmembers(type(storage), callable):
            if not name.startswith("__"):
                setattr(storage, name, self._held(getattr(storage, name)))
        return storage
