"""Typed exceptions of mnist-accel: each carries a one-line message that says what is wrong and how to fix it.

The CLIs turn these into a one-line message and an exit code (2 for bad input, 1 for runtime failures);
library users catch them by their standard base classes.
"""

from __future__ import annotations

import signal


class DataError(ValueError):
    """A data file is malformed, truncated, or fails its checksum."""


class DataUnavailable(FileNotFoundError):
    """MNIST could not be found locally and could not be downloaded."""


class BackendUnavailable(RuntimeError):
    """The requested compute backend cannot run on this machine (the message says why)."""


class ConfigError(ValueError):
    """A training option is invalid or not supported by the chosen path or backend."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or left its plausible range (see ``mnist_accel.training.divergence``);
    ``result`` holds the model of the last sound epoch."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or a stop signal during training, after the last completed epoch's state was saved (the
    message says where); ``exit_code`` is the command's: 130 for Ctrl-C, 128 + the signal's number else."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP, SIGUSR1) arrived inside ``mnist_accel.training.signals.stop_on_signals``.

    A KeyboardInterrupt, so that whatever saves its work on Ctrl-C does so here too.
    """

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}")
        self.signum, self.exit_code = signum, 128 + signum  # the shell's convention for a signal's death
