"""A sweep's results for people: one row per trial (``trials.csv``), a JSON summary, the table of the best
trials printed at the end, and a PNG (accuracy against trial and against training time, and which
parameters mattered).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnist_accel.persist import atomic_write, write_json
from mnist_accel.sweep.space import describe

STATS = ("test_accuracy", "val_accuracy", "train_seconds", "wall_seconds", "epochs", "backend", "device",
         "worker", "reason", "retry_of")
INTERRUPTED = "interrupted before it finished"


def is_interrupted(trial) -> bool:
    """A failed trial that did not fail by itself (stopped, or its worker died): run again, not counted."""
    return trial.state.name == "FAIL" and "reason" not in trial.user_attrs


def retry_of(trial) -> int | None:
    """The trial this one runs again (Optuna's retry callback keeps the history in its system attributes)."""
    history = trial.system_attrs.get("retry_history")
    return history[-1] if history else None


def rows(trials: Sequence[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per trial that started, in trial order; parameters as ``params_NAME``."""
    retried = {retry_of(t): t.number for t in trials if retry_of(t) is not None}
    out = []
    for t in trials:
        if t.state.name == "WAITING":
            continue
        row: dict[str, Any] = {"number": t.number, "state": t.state.name, "value": t.value}
        row.update({f"params_{n}": t.params.get(n) for n in names})
        row.update({k: t.user_attrs.get(k) for k in STATS})
        row["retry_of"] = retry_of(t)
        if is_interrupted(t):
            row["reason"] = INTERRUPTED + (f"; run again as trial {retried[t.number]}" if t.number in retried else "")
        row["started"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        row["finished"] = t.datetime_complete.isoformat(timespec="seconds") if t.datetime_complete else None
        out.append(row)
    return out


def counts(table: Sequence[dict[str, Any]]) -> dict[str, int]:
    c = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0}
    for r in table:
        if r["state"] == "FAIL":
            c["interrupted" if str(r["reason"]).startswith(INTERRUPTED) else "failed"] += 1
        else:
            c[{"COMPLETE": "complete", "PRUNED": "pruned", "RUNNING": "running"}[r["state"]]] += 1
    return c


def best(table: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    done = [r for r in table if r["state"] == "COMPLETE" and r["value"] is not None]
    return sorted(done, key=lambda r: (-r["value"], r["number"]))[:n]


def write_csv(path: str | os.PathLike, table: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    fields = ["number", "state", "value", *(f"params_{n}" for n in names), *STATS, "started", "finished"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def importance(study) -> dict[str, float]:
    """Optuna's parameter importances, or {} while there are too few finished trials to tell."""
    import warnings

    import optuna

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found = {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
        except (ValueError, RuntimeError, ZeroDivisionError):
            return {}
    # Optuna warns, and answers equal shares, when the trials cannot tell the parameters apart.
    return {} if any("importance" in str(w.message) for w in caught) else found


def write_summary(path: str | os.PathLike, table: Sequence[dict[str, Any]], info: dict[str, Any],
                  importances: dict[str, float]) -> None:
    top = best(table, 1)
    write_json(path, {**info, "counts": counts(table), "best": top[0] if top else None,
                      "importance": importances, "trials": list(table)})


def format_table(table: Sequence[dict[str, Any]], names: Sequence[str], metric: str, n: int = 5) -> str:
    """The best ``n`` finished trials as aligned text columns, and a line on the ones that did not finish."""
    top = best(table, n)
    c = counts(table)
    tally = f"{c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
    if c["interrupted"]:
        tally += f", {c['interrupted']} interrupted (run again)"
    if not top:
        return f"no trial finished ({tally})"
    header = ["trial", metric, *names, "train s", "backend"]
    lines = [[str(r["number"]), f"{r['value']:.4f}",
              *(_cell(r[f"params_{k}"]) for k in names), f"{r['train_seconds'] or 0:.2f}", str(r["backend"])]
             for r in top]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    text = [f"best {len(top)} of {len(table)} trials ({tally}):",
            "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    text += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines]
    failed = [r for r in table if r["state"] == "FAIL" and not str(r["reason"]).startswith(INTERRUPTED)]
    text += [f"trial {r['number']} failed: {r['reason']}" for r in failed[:3]]
    return "\n".join(text)


def _cell(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def trial_line(row: dict[str, Any], names: Sequence[str], metric: str) -> str:
    """One finished trial, as printed while the sweep runs."""
    params = describe({k: row[f"params_{k}"] for k in names})
    if row["state"] == "FAIL":
        return f"trial {row['number']} failed ({params}): {row['reason']}"
    what = "pruned" if row["state"] == "PRUNED" else "complete"
    return (f"trial {row['number']} {what}: {metric} {row['value']:.4f} ({params}) "
            f"{row['train_seconds'] or 0:.2f}s on {row['backend']}")


def write_plot(path: str | os.PathLike, table: Sequence[dict[str, Any]], importances: dict[str, float],
               metric: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    kinds = (("COMPLETE", "complete", "o", "tab:blue"), ("PRUNED", "pruned (at its last epoch)", "x", "tab:orange"))
    for state, label, marker, color in kinds:
        chosen = [r for r in table if r["state"] == state and r["value"] is not None]
        if not chosen:  # no empty entry in the legend
            continue
        axes[0].scatter([r["number"] for r in chosen], [r["value"] for r in chosen], marker=marker, color=color,
                        label=label)
        axes[1].scatter([r["train_seconds"] or 0 for r in chosen], [r["value"] for r in chosen], marker=marker,
                        color=color, label=label)
    finished = sorted((r for r in table if r["state"] == "COMPLETE" and r["value"] is not None),
                      key=lambda r: r["number"])
    if finished:
        running, best_so_far = -math.inf, []
        for r in finished:
            running = max(running, r["value"])
            best_so_far.append(running)
        axes[0].step([r["number"] for r in finished], best_so_far, where="post", color="tab:green", label="best so far")
    failed = [r["number"] for r in table if r["state"] == "FAIL"]
    if failed:
        low = min((r["value"] for r in table if r["value"] is not None), default=0.0)
        axes[0].scatter(failed, [low] * len(failed), marker="v", color="tab:red", label="failed or interrupted")
    axes[0].set(xlabel="trial", ylabel=metric, title=f"{metric} by trial")
    axes[0].xaxis.get_major_locator().set_params(integer=True)  # trials are numbered, not measured
    axes[1].set(xlabel="training seconds of the trial", ylabel=metric, title=f"{metric} against training time")
    for ax in axes[:2]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if importances:
        names = list(importances)[::-1]
        axes[2].barh(names, [importances[n] for n in names], color="tab:purple")
        axes[2].set(xlabel="importance (Optuna, sums to 1)", title="which parameters mattered")
    else:
        axes[2].axis("off")
        axes[2].text(0.5, 0.5, "parameter importance needs at least\ntwo finished trials with different values",
                     ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue()))
