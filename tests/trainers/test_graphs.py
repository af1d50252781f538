"""The step runners: direct calls on the CPU, and on the GPU one direct step, one capture, then replays;
a failed capture falls back to direct steps and says why. The GPU tests check that graph replays train
the same model as direct steps."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve
from mnist_accel.trainers.graphs import NOTHING_CAPTURED, DirectSteps, GraphSteps, make_steps
from mnist_accel.trainers.vectorized import VectorizedTrainer


class FakeCuda:
    """The slice of ``cupy.cuda`` GraphSteps uses, recording what happens to the stream."""

    def __init__(self, fail_capture: bool = False) -> None:
        self.log: list[str] = []
        self.capturing = False
        self.fail_capture = fail_capture
        cuda = self

        class Stream:
            def __init__(self, non_blocking: bool = False) -> None:
                assert non_blocking  # capture is refused on the legacy default stream

            def __enter__(self):
                cuda.log.append("enter")

            def __exit__(self, *exc):
                cuda.log.append("exit")

            def begin_capture(self):
                cuda.capturing = True
                cuda.log.append("begin")

            def end_capture(self):
                cuda.capturing = False
                cuda.log.append("end")
                return Graph()

            def wait_event(self, event):
                cuda.log.append(f"wait {event}")

            def record(self):
                return "inner"

        class Graph:
            def launch(self, stream):
                cuda.log.append("launch")

        class Outer:
            def record(self):
                return "outer"

            def wait_event(self, event):
                cuda.log.append(f"outer waits {event}")

        self.Stream = Stream
        self.MemoryPool = lambda: type("Pool", (), {"malloc": None})()
        self.get_current_stream = Outer
        self.using_allocator = lambda malloc: contextlib.nullcontext()


def _runner(fail: bool = False):
    cuda = FakeCuda(fail)
    xp = type("XP", (), {"cuda": cuda})()

    def step():
        if cuda.capturing and cuda.fail_capture:
            raise RuntimeError("cuBLAS is not allowed\nduring capture")
        cuda.log.append("capture-step" if cuda.capturing else "direct-step")

    return GraphSteps(xp, step), cuda


def test_first_step_direct_second_captured_then_replayed():
    steps, cuda = _runner()
    assert steps.status == NOTHING_CAPTURED
    with steps.epoch():
        for _ in range(4):
            steps()
    assert steps.status == "on"
    assert cuda.log == ["wait outer", "enter", "direct-step", "begin", "capture-step", "end", "launch", "launch",
                        "launch", "exit", "outer waits inner"]


def test_failed_capture_falls_back_to_direct_steps_and_says_why():
    steps, cuda = _runner(fail=True)
    for _ in range(3):
        steps()
    assert steps.graph is None and "\n" not in steps.status
    assert steps.status.startswith("off (RuntimeError: cuBLAS is not allowed during capture")
    assert cuda.log.count("direct-step") == 3 and not cuda.capturing and "launch" not in cuda.log


def test_cpu_and_disabled_runners_call_the_step():
    calls = []
    for runner in (make_steps(np, False, True, lambda: calls.append(1)), DirectSteps(lambda: calls.append(2))):
        with runner.epoch():
            runner()
    assert calls == [1, 2]
    assert make_steps(np, False, True, lambda: None).status == "off (CPU)"


def _epoch(graphs: bool, mnist, dropout: float) -> tuple[list[np.ndarray], str]:
    cfg = resolve(backend="cuda", hidden=(128, 32), epochs=2, batch_size=100, dropout=dropout, graphs=graphs)
    params = model.init_params(np.random.default_rng(0), [784, 128, 32, 10], "he", True, np.float32)
    trainer = VectorizedTrainer(cfg, get_backend("cuda"), params, np.random.default_rng(1),
                                mnist.train_images[:5050], mnist.train_labels[:5050])  # with a short last batch
    loss = [float(to_host(trainer.train_epoch()[0])) for _ in range(2)]
    assert loss[1] < loss[0]
    return [to_host(p) for p in trainer.params], trainer.steps.status


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_graph_replays_train_the_same_model_as_direct_steps(mnist, dropout):
    replayed, status = _epoch(True, mnist, dropout)
    direct, off = _epoch(False, mnist, dropout)
    assert status == "on" and off == "off"
    # Not to the bit: under stream capture cuBLAS may pick another kernel (it cannot grow its workspace there),
    # which sums in another order; float32 rounding over an epoch of such sums stays far under 1e-6.
    for a, b in zip(replayed, direct):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
