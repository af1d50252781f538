"""Turn a saved benchmark run into tables, target checks and a chart.

    pytest bench --benchmark-json run.json
    python -m bench.report run.json --png chart.png [--sweep-png sweep.png] [--frontier frontier.png]
        [--markdown report.md] [--check]

Each row: seconds per epoch (per run in ``seeds``), samples per second, test accuracy after the run,
speed-up against the group's reference (in ``seeds``, the preset's NumPy rendering), and the share of the
arithmetic floor (the dense FLOPs at the measured GEMM peak: SGEMM for float32 rows, DGEMM for float64
ones). The ``time-to-98`` group's rows are whole trainings over several seeds: their table gives training
seconds, test accuracy and seconds to 98% (means, then per seed), and ``--frontier`` draws accuracy
against seconds. The report opens with the machine the run was measured on (``bench.machine``). ``--check`` exits 1
when a speed target, or an accuracy target on a full-size run, is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.machine import summary

# (group prefix, faster row, slower row, minimum ratio of their epoch times, what it is)
TARGETS = [
    ("loop", "numba-float64", "numpy-float64", 40.0, "Numba loop vs NumPy reference loop (float64)"),
    ("loop", "numba-float32", "numba-float64", 1.0, "Numba loop: float32 at least as fast as float64"),
    ("loop", "cuda-float64", "numba-float64", 3.0, "GPU loop vs Numba loop (float64)"),
    ("vectorized", "numba", "torch-cpu", 1.5, "vectorized (numba) vs PyTorch CPU"),
    ("vectorized", "numba", "numpy", 1.0, "vectorized: numba faster than numpy"),
    ("classifier-fit", "mnist_accel", "sklearn", 3.0, "MLPClassifier fit (3 epochs, float32) vs scikit-learn's"),
    ("classifier-float64", "mnist_accel", "sklearn", 3.0, "MLPClassifier fit (3 epochs, float64) vs scikit-learn's"),
    ("classifier-lbfgs", "mnist_accel", "sklearn", 3.0, "MLPClassifier lbfgs (50 iterations) vs scikit-learn's"),
    ("regressor", "mnist_accel", "sklearn", 3.0, "MLPRegressor fit (3 epochs) vs scikit-learn's"),
    ("vectorized", "cuda", "torch-cuda", 10.0, "vectorized on the GPU vs PyTorch eager"),
    ("vectorized", "cuda", "torch-cuda-graphs", 1.0, "vectorized on the GPU vs PyTorch with CUDA graphs"),
    ("seeds", "full-batch", "full-batch-rendering", 5.0, "full-batch preset vs the write-up's NumPy code"),
    ("engines", "whole-step", "sparse", 1.1, "full-batch: the fused whole-set step vs the sparse products alone"),
    ("engines", "sparse", "dense-blas", 1.1, "full-batch: the sparse products vs dense BLAS"),
    ("shared", "grid-mnist_accel-2jobs", "grid-sklearn-2jobs", 3.0, "GridSearchCV(n_jobs=2): ours vs scikit-learn's"),
    ("shared", "grid-mnist_accel-2jobs", "grid-mnist_accel-1job", 1.0, "GridSearchCV: ours n_jobs=2 vs n_jobs=1"),
    ("shared", "default-two-at-once", "default-alone", 1 / 2.5,
     "two default trainings at once: epoch alone over together (at most 2.5x slower)"),
    ("shared", "busy-default", "busy-threads-1", 1 / 1.25, "beside a busy process: --threads 1 over the default"),
    ("shared", "busy-default", "busy-threads-2", 1 / 1.25, "beside a busy process: --threads 2 over the default"),
    ("seeds", "deep-sgd", "deep-sgd-rendering", 30.0, "deep-sgd on Numba vs the write-up's NumPy code"),
    ("time-to-98", "speedrun", "torch-speedrun", 3.0, "speedrun preset vs PyTorch on the same recipe (CPU)"),
    ("compile", "tutorial-numba", "tutorial-numpy", 1.0,
     "first tutorial run on a cold Numba cache vs the same run on NumPy (wall)"),
]
# (group, row, figure, maximum seconds, what it is): budgets, not ratios (bench/test_compile.py's figures)
BUDGETS = [
    ("compile", "default-numba", "cold_compile_seconds", 1.5, "default preset: compilation on a cold Numba cache"),
    ("compile", "speedrun-numba", "cold_compile_seconds", 1.5, "speedrun preset: compilation on a cold Numba cache"),
]
# (group, row, figure, minimum, what it is): accuracy targets, checked on full-size runs only
ACCURACY = [
    ("seeds", "full-batch", "train_accuracy_at_140", 0.85, "full-batch: training accuracy at iteration 140"),
    ("seeds", "keras-mlp", "test_accuracy", 0.97, "keras-mlp: test accuracy"),
    ("time-to-98", "speedrun", "test_accuracy", 0.98, "speedrun: mean test accuracy over its seeds"),
]
# The group of whole trainings over seeds (bench/test_time_to_accuracy.py): its own table and the frontier chart.
# A row of that group without ``seeds`` is the GPU's single time-to-98% figure (bench/test_vectorized.py).
FRONTIER = "time-to-98"
COMPILE = "compile"  # first runs on a cold and a warm Numba cache (bench/test_compile.py): their own table
REFERENCE = {"loop": "numpy-float64", "vectorized": "torch-cpu", "classifier": "sklearn", "regressor": "sklearn"}
# What the names of mnist-accel's own rows start with; the rest are peers.
OURS = ("numpy", "numba", "cuda", "mnist_accel", "default-", "busy-", "grid-mnist_accel", "whole-step", "sparse",
        "dense-blas")


def seconds(bench: dict[str, Any]) -> float:
    """A row's seconds: the timer's mean, or, for a command the row started (the ``shared`` group), the
    epoch seconds the command reported, which leave out its start-up and compilation."""
    return bench["extra_info"].get("seconds") or bench["stats"]["mean"]


def rate(bench: dict[str, Any]) -> float:
    """Training samples per second: a classifier round is a fit of several epochs."""
    info = bench["extra_info"]
    return info["samples"] * info.get("epochs", 1) / seconds(bench)


def row_name(bench: dict[str, Any]) -> str:
    info = bench.get("extra_info", {})
    name = info.get("backend", bench["name"])
    if bench["group"].startswith("sweep"):
        return f"{name} w{info['width']} b{info['batch']}"
    return f"{name}-{info['dtype']}" if bench["group"].startswith("loop") else name


def load(path: Path) -> tuple[dict[str, dict[str, dict]], dict[str, float]]:
    """Rows by group, and the measured peaks and single figures: cpu and gpu GFLOP/s, seconds_to_98."""
    run = json.loads(path.read_text())
    groups: dict[str, dict[str, dict]] = {}
    peak: dict[str, float] = {}
    for b in run["benchmarks"]:
        info = b["extra_info"]
        if b["group"] == "peak":
            peak.update({k: v for k, v in (("cpu", info.get("sgemm_peak_gflops")),
                                           ("cpu64", info.get("dgemm_peak_gflops")),
                                           ("gpu", info.get("gpu_sgemm_peak_gflops"))) if v})
        elif b["group"] == FRONTIER and "seeds" not in info:
            peak["seconds_to_98"] = info.get("seconds_to_98") or float("inf")
        else:
            groups.setdefault(b["group"], {})[row_name(b)] = b
    return groups, peak


def row_peak(name: str, peak: dict[str, float], dtype: str = "float32") -> float | None:
    """The peak a row's floor is measured against: the GPU's for rows that ran on it, else the CPU's DGEMM
    for float64 rows and SGEMM for the rest (None where the run did not measure it)."""
    if "cuda" in name:
        return peak.get("gpu")
    return peak.get("cpu64") if dtype == "float64" else peak.get("cpu")


def reference(group: str, name: str, rows: dict[str, dict]) -> dict | None:
    """The row a row's speed-up is against: the group's reference, or in ``seeds`` its preset's rendering."""
    if group == "seeds":
        return rows.get(rows[name]["extra_info"].get("preset", name) + "-rendering")
    return rows.get(REFERENCE.get(group.split("-")[0], ""))


def table(groups: dict[str, dict[str, dict]], peak: dict[str, float]) -> list[str]:
    lines = []
    for group, rows in groups.items():
        if group == FRONTIER:
            lines += frontier_table(rows)
            continue
        if group == COMPILE:
            lines += compile_table(rows)
            continue
        ref_name = "its rendering" if group == "seeds" else REFERENCE.get(group.split("-")[0])
        unit = {"classifier": "s/fit", "regressor": "s/fit", "seeds": "s/run",
                "shared": "s/epoch (grid: s/search)"}.get(group.split("-")[0], "s/epoch")
        header = f"| row | {unit} | samples/s | test acc | vs {ref_name or '-'} | share of floor |"
        lines += [f"### {group}", "", header,
                  "|---|---:|---:|---:|---:|---:|"]
        def order(kv, group=group):
            info = kv[1]["extra_info"]
            if group.startswith("sweep"):
                return (info["backend"], info["width"], info["batch"])
            return (seconds(kv[1]),)

        for name, b in sorted(rows.items(), key=order):
            mean, info = seconds(b), b["extra_info"]
            ref = reference(group, name, rows)
            speedup = f"{ref['stats']['mean'] / mean:.2f}x" if ref else "-"
            top = row_peak(name, peak, info.get("dtype", "float32"))
            floor = f"{info['flops_per_epoch'] / (top * 1e9) / mean:.1%}" if top else "-"
            samples_per_s = rate(b)
            lines.append(f"| {name} | {mean:.3f} | {samples_per_s:,.0f} | {info['test_accuracy']:.4f} "
                         f"| {speedup} | {floor} |")
        lines.append("")
    for where, what in (("cpu", "CPU SGEMM"), ("cpu64", "CPU DGEMM"), ("gpu", "GPU SGEMM")):
        if where in peak:
            lines.append(f"Measured {what} peak: {peak[where]:,.0f} GFLOP/s.")
    return lines


def _per_seed(values: list, fmt: str) -> str:
    return ", ".join("-" if v is None else format(v, fmt) for v in values)


def frontier_table(rows: dict[str, dict]) -> list[str]:
    """Whole trainings, fastest first: mean training seconds and test accuracy over the seeds, each with its
    per-seed figures, and the mean training seconds to 98% test accuracy where every seed reached it."""
    lines = [f"### {FRONTIER}", "",
             "| row | training s | test acc | s to 98% | seeds | epochs | s per seed | test acc per seed |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for name, b in sorted(rows.items(), key=lambda kv: seconds(kv[1])):
        info = b["extra_info"]
        to_98 = info.get("seconds_to_98")
        lines.append(f"| {name} | {seconds(b):.3f} | {info['test_accuracy']:.4f} "
                     f"| {'-' if to_98 is None else f'{to_98:.3f}'} | {len(info['seeds'])} | {info.get('epochs', '-')} "
                     f"| {_per_seed(info.get('seconds_per_seed', []), '.3f')} "
                     f"| {_per_seed(info.get('test_accuracy_per_seed', []), '.4f')} |")
    return lines + [""]


def compile_table(rows: dict[str, dict]) -> list[str]:
    """The ``compile`` group: each command's compile_seconds and wall seconds on a cold and a warm cache."""
    lines = [f"### {COMPILE}", "", "| row | compile, cold | compile, warm | wall, cold | wall, warm |",
             "|---|---:|---:|---:|---:|"]
    for name, b in sorted(rows.items()):
        info = b["extra_info"]
        lines.append(f"| {name} | {info['cold_compile_seconds']:.2f} s | {info['warm_compile_seconds']:.2f} s "
                     f"| {info['cold_wall_seconds']:.2f} s | {info['warm_wall_seconds']:.2f} s |")
    return lines + [""]


def check(groups: dict[str, dict[str, dict]], peak: dict[str, float] | None = None) -> tuple[list[str], bool]:
    lines, ok = ["", "| target | ratio | goal | met |", "|---|---:|---:|---|"], True
    if peak and "seconds_to_98" in peak:
        to_98 = peak["seconds_to_98"]
        ok &= to_98 < 1.0
        lines.append(f"| default preset on the GPU: training seconds to 98% test accuracy | {to_98:.2f} s "
                     f"| < 1 s | {'yes' if to_98 < 1.0 else 'NO'} |")
    for prefix, fast, slow, goal, label in TARGETS:
        rows = next((r for g, r in groups.items() if g.startswith(prefix)), {})
        if fast not in rows or slow not in rows:
            lines.append(f"| {label} | - | {goal:g}x | not measured (row missing) |")
            continue
        ratio = seconds(rows[slow]) / seconds(rows[fast])
        met = ratio >= goal
        ok &= met
        lines.append(f"| {label} | {ratio:.2f}x | {goal:.3g}x | {'yes' if met else 'NO'} |")
    for group, row, key, most, label in BUDGETS:
        info = groups.get(group, {}).get(row, {}).get("extra_info", {})
        if key not in info or info.get("quick"):  # a --quick run trains a few images: no budget applies
            lines.append(f"| {label} | - | <= {most:g} s | not measured (no full-size row) |")
            continue
        met = info[key] <= most
        ok &= met
        lines.append(f"| {label} | {info[key]:.2f} s | <= {most:g} s | {'yes' if met else 'NO'} |")
    for group, row, key, goal, label in ACCURACY:
        info = groups.get(group, {}).get(row, {}).get("extra_info", {})
        if info.get("samples", 0) < 60000 * (1 - 0.2) or key not in info:  # a --quick or partial run
            lines.append(f"| {label} | - | {goal:.2%} | not measured (no full-size row) |")
            continue
        met = info[key] >= goal
        ok &= met
        lines.append(f"| {label} | {info[key]:.2%} | {goal:.2%} | {'yes' if met else 'NO'} |")
    return lines, ok


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sweep_chart(groups: dict[str, dict[str, dict]], path: Path) -> None:
    """Seconds per epoch, a line per backend: against FLOPs per epoch for the width sweep, against the
    batch size for the batch sweep (whose FLOPs per epoch do not change)."""
    plt = _pyplot()
    sweeps = {g: r for g, r in groups.items() if g.startswith("sweep")}
    fig, axes = plt.subplots(1, len(sweeps), figsize=(6 * len(sweeps), 4.5), squeeze=False)
    for ax, (group, rows) in zip(axes[0], sweeps.items()):
        knob = "width" if group.endswith("width") else "batch"
        lines: dict[str, list[tuple[float, float, int]]] = {}
        for b in rows.values():
            info = b["extra_info"]
            lines.setdefault(info["backend"], []).append((info["flops_per_epoch"], seconds(b), info[knob]))
        by_flops = knob == "width"
        for backend, pts in sorted(lines.items()):
            pts.sort(key=lambda p: p[2])
            xs = [p[0] if by_flops else p[2] for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker="o", label=backend)
            if by_flops:
                for x, (_, y, k) in zip(xs, pts):
                    ax.annotate(str(k), (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("seconds per epoch")
        if by_flops:
            ax.set_xlabel("FLOPs per epoch")
            ax.set_title(f"{group}: hidden width 64-2048 at batch 128 (labels: width)")
        else:
            flops = next(iter(rows.values()))["extra_info"]["flops_per_epoch"]
            ax.set_xlabel("batch size")
            ax.set_title(f"{group}: width 256, {flops / 1e9:.1f} GFLOP/epoch at any batch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def frontier_chart(rows: dict[str, dict], path: Path) -> None:
    """Test accuracy against training seconds, a labelled point per row at its means over the seeds (the
    seeds' own runs faint behind it), on linear axes with seconds from zero: how far apart two rows are in
    time is then what it looks like. Blue: mnist-accel; orange: peers; the dashed line is 98%."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, b in rows.items():
        info = b["extra_info"]
        color = "tab:blue" if info.get("library") == "mnist_accel" else "tab:orange"
        ax.scatter(info.get("seconds_per_seed", []), info.get("test_accuracy_per_seed", []), color=color,
                   alpha=0.3, s=14)
        ax.scatter([seconds(b)], [info["test_accuracy"]], color=color, s=40)
        ax.annotate(f"{name} ({seconds(b):.2f} s, {info['test_accuracy']:.2%})", (seconds(b), info["test_accuracy"]),
                    fontsize=8, textcoords="offset points", xytext=(4, 4))
    ax.axhline(0.98, color="gray", linestyle="--", linewidth=0.8)
    right = max(max([seconds(b), *b["extra_info"].get("seconds_per_seed", [])]) for b in rows.values())
    ax.set_xlim(0, right * 1.35)  # from zero, every seed's point inside; room for the labels
    ax.set_xlabel("training seconds (mean over seeds; blue: mnist-accel, orange: peers)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{FRONTIER}: accuracy against training time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def chart(groups: dict[str, dict[str, dict]], path: Path) -> bool:
    """Samples per second as bars from zero on a linear axis (a log axis that starts near the smallest value
    makes 3x look like 20x), each with its figure and its ratio to the group's reference. False, and nothing
    written, when the run has no group for bars (the sweeps and the frontier have their own charts; the
    compile group, its table)."""
    plt = _pyplot()
    groups = {g: r for g, r in groups.items() if not g.startswith("sweep") and g not in (FRONTIER, COMPILE)}
    if not groups:
        return False
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.2 + 0.45 * sum(len(r) for r in groups.values())),
                             squeeze=False)
    for ax, (group, rows) in zip(axes[:, 0], groups.items()):
        items = sorted(rows.items(), key=lambda kv: -seconds(kv[1]))
        rates = [rate(b) for _, b in items]
        ours = [n.startswith(OURS) or (group == "seeds" and not n.endswith("-rendering")) for n, _ in items]
        colors = ["tab:blue" if o else "tab:orange" for o in ours]
        ax.barh([n for n, _ in items], rates, color=colors)
        ax.set_xlim(0, max(rates) * 1.35)  # room for the labels
        ax.set_title(group)
        ax.set_xlabel("training samples per second (blue: mnist-accel, orange: peers)")
        for y, ((name, b), r) in enumerate(zip(items, rates)):
            ref = reference(group, name, rows)
            ratio = f" ({rate(b) / rate(ref):.2f}x)" if ref is not None and ref is not b else ""
            ax.text(r, y, f" {r:,.0f}{ratio}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.report", description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="JSON written by pytest --benchmark-json")
    p.add_argument("--png", type=Path, help="write a bar chart")
    p.add_argument("--sweep-png", type=Path, help="write the scaling sweeps' chart")
    p.add_argument("--frontier", type=Path, help=f"write the {FRONTIER} group's test accuracy against training "
                   "seconds")
    p.add_argument("--markdown", type=Path, help="also write the report to this file")
    p.add_argument("--check", action="store_true", help="exit 1 if a speed target is missed")
    args = p.parse_args(argv)
    try:
        groups, peak = load(args.run)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench.report: error: cannot read {args.run}: {exc}", file=sys.stderr)
        return 2
    target_lines, ok = check(groups, peak)
    machine = summary(json.loads(args.run.read_text()).get("machine_info"))
    text = "\n".join(machine + table(groups, peak) + target_lines) + "\n"
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    if args.png and not chart(groups, args.png):
        print(f"bench.report: no group for the bar chart in this run; {args.png} not written", file=sys.stderr)
    if args.sweep_png and any(g.startswith("sweep") for g in groups):
        sweep_chart(groups, args.sweep_png)
    if args.frontier:
        if FRONTIER in groups:
            frontier_chart(groups[FRONTIER], args.frontier)
        else:
            print(f"bench.report: no {FRONTIER} group in this run; {args.frontier} not written", file=sys.stderr)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
