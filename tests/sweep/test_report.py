"""A sweep's results: a row per started trial with its reason when it did not finish, the best-first table,
a CSV that reads back, the JSON summary and the PNG."""

from __future__ import annotations

import csv
import json

import pytest

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from mnist_accel.sweep import report as report

DISTS = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "hidden": CategoricalDistribution([16, 32])}
NAMES = ["lr", "hidden"]


def _trial(state, value=None, reason=None, retry_of=None):
    user = {"backend": "numpy", "train_seconds": 1.5}
    if reason is not None:
        user["reason"] = reason
    steps = {0: value} if value is not None else {}
    # Optuna's retry callback writes the history of the trials a retry runs again
    system = {"failed_trial": retry_of, "retry_history": [retry_of]} if retry_of is not None else {}
    return create_trial(state=state, value=value, params={"lr": 0.01, "hidden": 16}, distributions=DISTS,
                        user_attrs=user, system_attrs=system, intermediate_values=steps)


@pytest.fixture
def study():
    s = optuna.create_study(direction="maximize")
    s.add_trial(_trial(TrialState.COMPLETE, 0.91))
    s.add_trial(_trial(TrialState.COMPLETE, 0.95))
    s.add_trial(_trial(TrialState.PRUNED, 0.2, reason="pruned after epoch 1"))
    s.add_trial(_trial(TrialState.FAIL, reason="training diverged in epoch 1"))
    s.add_trial(_trial(TrialState.FAIL))  # its driver stopped: interrupted
    s.add_trial(_trial(TrialState.COMPLETE, 0.93, retry_of=4))
    s.enqueue_trial({"lr": 0.02, "hidden": 32})  # waiting: not a row
    return s


def test_rows_and_counts(study):
    rows = report.rows(study.get_trials(), NAMES)
    assert [r["number"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert rows[2]["state"] == "PRUNED" and rows[2]["value"] == 0.2
    assert rows[4]["reason"] == "interrupted before it finished; run again as trial 5"
    assert rows[5]["retry_of"] == 4 and rows[0]["params_lr"] == 0.01 and rows[0]["backend"] == "numpy"
    assert report.counts(rows) == {"complete": 3, "pruned": 1, "failed": 1, "interrupted": 1, "running": 0}
    assert [r["number"] for r in report.best(rows, 2)] == [1, 5]
    assert report.is_interrupted(study.trials[4]) and not report.is_interrupted(study.trials[3])


def test_table_is_best_first_and_names_failures(study):
    text = report.format_table(report.rows(study.get_trials(), NAMES), NAMES, "test_accuracy", n=2)
    lines = text.splitlines()
    assert lines[0] == "best 2 of 6 trials (3 complete, 1 pruned, 1 failed, 1 interrupted (run again)):"
    assert lines[1].split() == ["trial", "test_accuracy", "lr", "hidden", "train", "s", "backend"]
    assert lines[2].split()[:2] == ["1", "0.9500"] and lines[3].split()[:2] == ["5", "0.9300"]
    assert lines[4] == "trial 3 failed: training diverged in epoch 1"


def test_no_finished_trial():
    assert report.format_table([], NAMES, "test_accuracy") == "no trial finished (0 complete, 0 pruned, 0 failed)"


def test_csv_json_and_png(study, tmp_path):
    rows = report.rows(study.get_trials(), NAMES)
    report.write_csv(tmp_path / "trials.csv", rows, NAMES)
    with open(tmp_path / "trials.csv") as f:
        back = list(csv.DictReader(f))
    assert [r["state"] for r in back] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert back[1]["value"] == "0.95" and back[3]["reason"] == "training diverged in epoch 1"
    assert back[0]["params_hidden"] == "16" and back[0]["val_accuracy"] == ""
    importances = report.importance(study)
    report.write_summary(tmp_path / "summary.json", rows, {"study": "s"}, importances)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best"]["number"] == 1 and summary["counts"]["complete"] == 3 and len(summary["trials"]) == 6
    pytest.importorskip("matplotlib")
    report.write_plot(tmp_path / "sweep.png", rows, {"lr": 0.7, "hidden": 0.3}, "test_accuracy", "title")
    report.write_plot(tmp_path / "empty.png", [], {}, "test_accuracy", "title")
    for name in ("sweep.png", "empty.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trial_lines():
    row = {"number": 3, "state": "PRUNED", "value": 0.5, "params_lr": 0.001234, "params_hidden": 16,
           "train_seconds": 2.0, "backend": "numba", "reason": None}
    assert report.trial_line(row, NAMES, "val_accuracy") == \
        "trial 3 pruned: val_accuracy 0.5000 (lr=0.00123 hidden=16) 2.00s on numba"
    row.update(state="FAIL", reason="out of memory: x")
    assert report.trial_line(row, NAMES, "val_accuracy") == "trial 3 failed (lr=0.00123 hidden=16): out of memory: x"
