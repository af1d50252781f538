"""Stopping cleanly when a job scheduler or container runtime asks a command to stop.

Batch systems and container runtimes (Slurm, PBS, Kubernetes, ``docker stop``) end a job with SIGTERM,
some sending SIGHUP or SIGUSR1 first as a warning. Inside ``stop_on_signals()`` each of them raises
``Stopped``, a KeyboardInterrupt, so training saves its last completed epoch exactly as on Ctrl-C, and
the command exits with 128 + the signal's number. The command-line entry points install the handlers for
the duration of a command and restore the previous ones after it; importing mnist_accel or calling
``fit`` changes no signal handling (library users who want it wrap their own code in the context).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from mnist_accel.errors import Stopped

STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGUSR1")
                                      if hasattr(signal, name))  # Windows has SIGTERM only


@contextmanager
def stop_on_signals(signals: Sequence[int] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of ``signals`` to arrive raises Stopped in the main thread.

    Later ones are ignored, so they cannot cut short the saving the first one set off (a scheduler that
    will not wait sends SIGKILL). A signal that was ignored on entry stays ignored: ``nohup`` ignores
    SIGHUP so that a run outlives its terminal, and must keep doing so. Outside the main thread, where
    Python cannot set handlers, the block runs with the handlers it has.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []
    closing: list[int] = []  # signals that came while the handlers were being put back

    def handler(signum: int, frame: FrameType | None) -> None:
        if closing:  # raising now would leave the remaining handlers unrestored
            closing.append(signum)
        elif not fired:
            fired.append(signum)
            raise Stopped(signum)

    previous = {}
    try:
        for signum in signals:
            if signal.getsignal(signum) != signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        closing.append(0)
        for signum, old in previous.items():
            # None: a handler set outside Python, which cannot be reinstated; the default is the nearest
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        late = closing[1:]
        if late and not fired and sys.exc_info()[0] is None:
            raise Stopped(late[0])
