"""Hyperparameter sweeps with Optuna: ``sweep()`` and the command ``python -m mnist_accel.sweep``
(``run``), the search space (``space``), the study and its storage (``study``), what a worker runs for a
trial (``trial``), where trials run: here or on Dask (``cluster``), the driver (``drive``) and the report."""

from mnist_accel.sweep.run import SweepResult, main, sweep

__all__ = ["SweepResult", "main", "sweep"]
