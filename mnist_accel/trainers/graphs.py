"""Running the vectorized trainer's step: replayed from a captured CUDA graph on the GPU, called directly
elsewhere.

At MNIST sizes a GPU step is a dozen launches of a few microseconds of work each, so launching costs more
than computing. The trainer's step reads everything that changes from batch to batch from device memory
(a step counter, the epoch's scalars, dropout keys and shuffled order), so one capture serves every full
batch. The step's temporaries are allocated from a memory pool of the graph's own, which lives as long
as the graph: CuPy's shared pool would hand a freed temporary to other work while the graph still
writes to it on every replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class DirectSteps:
    """Calls the step; the CPU backends, and the GPU when graphs are turned off."""

    def __init__(self, step: Callable[[], None], status: str = "off") -> None:
        self.step, self.status = step, status

    def __call__(self) -> None:
        self.step()

    @contextlib.contextmanager
    def epoch(self) -> Iterator[None]:
        yield


NOTHING_CAPTURED = "off (no second full batch to capture)"


class GraphSteps:
    """Runs the first step directly (it compiles kernels and sets up cuBLAS outside any capture), captures
    the second, and replays the graph from then on. If capture fails, every step runs directly and
    ``status`` says why."""

    def __init__(self, xp: Any, step: Callable[[], None]) -> None:
        self.xp, self.step = xp, step
        self.stream = xp.cuda.Stream(non_blocking=True)  # capture needs a stream other than the legacy one
        self.pool = xp.cuda.MemoryPool()
        self.graph: Any = None
        self.calls = 0
        self.status = NOTHING_CAPTURED  # until the second full batch: then "on", or "off (reason)"

    @contextlib.contextmanager
    def epoch(self) -> Iterator[None]:
        """Puts the epoch's work on the graph's stream, ordered after what came before and before what
        follows, by events (no host sync)."""
        outer = self.xp.cuda.get_current_stream()
        self.stream.wait_event(outer.record())
        with self.stream:
            yield
        outer.wait_event(self.stream.record())

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 2:
            self._capture()
        if self.graph is not None:
            self.graph.launch(self.stream)
        else:
            self.step()

    def _capture(self) -> None:
        try:
            with self.xp.cuda.using_allocator(self.pool.malloc):
                self.stream.begin_capture()
                try:
                    self.step()
                finally:
                    graph = self.stream.end_capture()
            self.graph, self.status = graph, "on"
        except Exception as exc:  # e.g. a library call CuPy refuses during capture
            self.status = f"off ({type(exc).__name__}: {exc})".replace("\n", " ")


def make_steps(xp: Any, on_gpu: bool, enabled: bool, step: Callable[[], None]) -> DirectSteps | GraphSteps:
    if on_gpu and enabled:
        return GraphSteps(xp, step)
    return DirectSteps(step, "off" if on_gpu else "off (CPU)")
