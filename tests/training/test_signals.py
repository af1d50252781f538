"""A scheduler's stop signals: handled like Ctrl-C inside stop_on_signals only, with exit code 128 + n;
a real SIGTERM to a training process saves the state, and the resumed run ends bit-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_accel.cli.common import run_guarded
from mnist_accel.cli.train import main
from mnist_accel.errors import Stopped
from mnist_accel.persist import load_model
from mnist_accel.training import checkpoint as ckpt
from mnist_accel.training.signals import STOP_SIGNALS, stop_on_signals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture(autouse=True)
def _default_stop_signals():
    """Each test starts with the stop signals at their default action, as in a terminal, and so do the
    processes it starts: under nohup SIGHUP arrives ignored, and stop_on_signals rightly leaves an ignored
    signal ignored (test_an_ignored_signal_stays_ignored), which the other tests do not expect."""
    saved = {s: signal.signal(s, signal.SIG_DFL) for s in STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.5)  # Python runs the handler at the next bytecode; the sleep is cut short when it raises


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGUSR1, 138)])
def test_a_stop_signal_raises_stopped_once_and_handlers_are_restored(signum, code):
    before = signal.getsignal(signum)
    with pytest.raises(Stopped) as info:
        with stop_on_signals():
            assert signal.getsignal(signum) is not before
            try:
                _deliver(signum)
            finally:
                _deliver(signum)  # a second signal while the first is being handled is ignored
    assert info.value.exit_code == code and str(info.value) == f"stopped by {signal.Signals(signum).name}"
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signum) is before


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            _deliver(signal.SIGHUP)  # nothing happens
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_signal_while_the_handlers_are_put_back_still_stops(monkeypatch):
    import mnist_accel.training.signals as signals

    real, leaving = signal.signal, []

    def restoring(signum, handler):
        if leaving and signum == signal.SIGTERM:  # SIGUSR1's handler, put back last, is still ours
            _deliver(signal.SIGUSR1)
        return real(signum, handler)

    before = [signal.getsignal(s) for s in signals.STOP_SIGNALS]
    monkeypatch.setattr(signals.signal, "signal", restoring)
    with pytest.raises(Stopped, match="stopped by SIGUSR1"):
        with stop_on_signals():
            leaving.append(1)
    assert [signal.getsignal(s) for s in signals.STOP_SIGNALS] == before


def test_run_guarded_exits_128_plus_the_signal_with_one_line(capsys):
    def body() -> int:
        raise Stopped(signal.SIGTERM)

    assert run_guarded("prog", False, body) == 143
    assert capsys.readouterr().err == "prog: error: stopped by SIGTERM\n"


def test_importing_or_calling_main_leaves_the_handlers_as_they_were():
    code = ("import signal; import mnist_accel, mnist_accel.train, mnist_accel.training.fit, mnist_accel.predict, "
            "mnist_accel.sweep; "
            "before = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)]; "
            "assert before == [signal.SIG_DFL] * 3, before; "
            "assert mnist_accel.train.main(['--epochs', '0']) == 2; "
            "assert mnist_accel.predict.main(['--model', 'missing.npz', 'x.png']) == 2; "
            "assert mnist_accel.sweep.main(['--trials', '0']) == 2; "
            "assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)] == before")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# The child prints each epoch line, then after the first one waits up to a minute, so that the test's signal
# lands after epoch 1 every time however fast the machine; the signal's handling is the real command's.
PACED = ("import builtins, sys, time; import mnist_accel.cli.train as t\n"
         "def paced(*a, **k):\n"
         "    builtins.print(*a, **k)\n"
         "    if a and str(a[0]).startswith('epoch   1/'): time.sleep(60)\n"
         "t.print = paced\n"
         "sys.exit(t.main(sys.argv[1:]))\n")
COMMON = ["--backend", "numba", "--train-samples", "2000", "--test-samples", "500", "--hidden", "32", "--epochs", "4"]


@pytest.mark.parametrize("signum, with_checkpoint", [(signal.SIGTERM, True), (signal.SIGTERM, False),
                                                     (signal.SIGHUP, False), (signal.SIGUSR1, True)])
def test_a_real_stop_signal_saves_and_the_resumed_run_is_bit_identical(signum, with_checkpoint, tmp_path, mnist):
    proc = subprocess.Popen([sys.executable, "-c", PACED, *COMMON, *(["--checkpoint", "ck.npz"] * with_checkpoint)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert first.startswith("epoch   1/4"), first + proc.stderr.read()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # no-op if it has exited; never leave a sleeping child behind a failed assertion
    saved = tmp_path / ("ck.npz" if with_checkpoint else "mnist_accel-interrupted.npz")
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum and out == "" and "Traceback" not in err
    assert err.strip().splitlines() == [f"mnist_accel.train: error: stopped by {name}; the state after epoch 1 is "
                                        f"saved in {saved.name}: continue with --resume {saved.name}"]
    _, meta = ckpt.load(saved)
    assert len(meta["history"]) == 1
    resumed, whole = tmp_path / "resumed.npz", tmp_path / "whole.npz"
    assert main(["--resume", str(saved), "--save", str(resumed), "--quiet"]) == 0
    assert main([*COMMON, "--save", str(whole), "--quiet"]) == 0
    for a, b in zip(load_model(resumed)[0], load_model(whole)[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


# Here the signal lands in the middle of epoch 2, five steps in: the child sends it to itself from inside a
# training step, so the epoch's partly updated weights and optimizer state must not reach the checkpoint.
MID_EPOCH = ("import os, signal, sys; import mnist_accel.train as t\n"
             "from mnist_accel.trainers.vectorized import VectorizedTrainer\n"
             "original, calls = VectorizedTrainer._step, []\n"
             "def step(self, *a):\n"
             "    original(self, *a)\n"
             "    calls.append(1)\n"
             "    if self.epoch == 1 and len(calls) == self.steps_per_epoch + 5: os.kill(os.getpid(), signal.SIGTERM)\n"
             "VectorizedTrainer._step = step\n"
             "sys.exit(t.main(sys.argv[1:]))\n")


def test_a_stop_signal_in_the_middle_of_an_epoch_saves_the_epoch_before(tmp_path, mnist):
    argv = [*COMMON, "--quiet", "--checkpoint", "ck.npz"]
    proc = subprocess.run([sys.executable, "-c", MID_EPOCH, *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 143 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["mnist_accel.train: error: stopped by SIGTERM; the state after epoch 1 "
                                                "is saved in ck.npz: continue with --resume ck.npz"]
    resumed, whole = tmp_path / "resumed.npz", tmp_path / "whole.npz"
    assert main(["--resume", str(tmp_path / "ck.npz"), "--save", str(resumed), "--quiet"]) == 0
    assert main([*COMMON, "--save", str(whole), "--quiet"]) == 0
    for a, b in zip(load_model(resumed)[0], load_model(whole)[0], strict=True):
        np.testing.assert_array_equal(a, b)
