"""Typed exceptions of mnist-accel: each carries a one-line message that says what is wrong and how to fix it.

The CLIs turn these into a one-line message and an exit code (2 for bad input, 1 for runtime failures);
library users catch them by their standard base classes.
"""

from __future__ import annotations


class DataError(ValueError):
    """A data file is malformed, truncated, or fails its checksum."""


class DataUnavailable(FileNotFoundError):
    """MNIST could not be found locally and could not be downloaded."""


class BackendUnavailable(RuntimeError):
    """The requested compute backend cannot run on this machine (the message says why)."""


class ConfigError(ValueError):
    """A training option is invalid or not supported by the chosen path or backend."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; ``result`` holds the model of the last finite epoch."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the last completed epoch's state was saved (the message says where)."""
