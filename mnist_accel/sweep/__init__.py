"""Hyperparameter sweeps with Optuna: ``sweep()`` and the command ``python -m mnist_accel.sweep``
(``run``), the search space (``space``), the study (``study``), what a trial runs (``trial``), where
trials run (``pools``), the driver (``drive``), the guard around storage (``guard``) and the report."""

from mnist_accel.sweep.run import SweepResult, main, sweep

__all__ = ["SweepResult", "main", "sweep"]
