"""The report command on a small saved run: tables, target checks, charts, and one-line errors."""

from __future__ import annotations

import json

import pytest

from bench.report import main


def _bench(group, backend, mean, dtype="float32", **extra):
    return {"group": group, "name": f"test[{backend}]", "stats": {"mean": mean},
            "extra_info": {"backend": backend, "dtype": dtype, "samples": 60000, "flops_per_epoch": 4.9e10,
                           "test_accuracy": 0.95, **extra}}


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run.json"
    loop, vec = "loop-784-100-10", "vectorized-784-256-10-b128-adam"
    path.write_text(json.dumps({"benchmarks": [
        _bench(loop, "numpy", 10.0, "float64"), _bench(loop, "numba", 0.2, "float64"), _bench(loop, "numba", 0.3),
        _bench(vec, "numba", 0.5), _bench(vec, "numpy", 0.9), _bench(vec, "torch-cpu", 1.0),
        _bench("sweep-width", "numba", 0.1, width=64, batch=128),
        _bench("sweep-width", "numba", 0.3, width=256, batch=128),
        _bench("sweep-batch", "numba", 0.2, width=256, batch=32),
        _bench("sweep-batch", "numba", 0.1, width=256, batch=512),
        _bench(vec, "cuda", 0.019), _bench(vec, "torch-cuda", 0.2),
        {"group": "peak", "name": "peak", "stats": {"mean": 0.01}, "extra_info": {"sgemm_peak_gflops": 200.0}},
        {"group": "peak", "name": "gpu", "stats": {"mean": 0.01}, "extra_info": {"gpu_sgemm_peak_gflops": 5e4}},
        {"group": "time-to-98", "name": "t98", "stats": {"mean": 3.0}, "extra_info": {"seconds_to_98": 0.8}},
    ]}))
    return path


def test_report_tables_targets_and_charts(run, tmp_path, capsys):
    assert main([str(run), "--png", str(tmp_path / "a.png"), "--sweep-png", str(tmp_path / "b.png"),
                 "--markdown", str(tmp_path / "r.md")]) == 0
    out = capsys.readouterr().out
    assert "| numba-float64 | 0.200 |" in out and "50.00x" in out
    assert "| Numba loop vs NumPy reference loop (float64) | 50.00x | 40x | yes |" in out
    assert "| Numba loop: float32 at least as fast as float64 | 0.67x | 1x | NO |" in out
    assert "not measured (row missing)" in out and "Measured CPU SGEMM peak: 200 GFLOP/s." in out
    assert "| cuda | 0.019 |" in out and "| 5.2% |" in out  # a GPU row's floor uses the GPU's peak: 4.9e10/5e13/0.019
    assert "| vectorized on the GPU vs PyTorch eager | 10.53x | 10x | yes |" in out
    assert "training seconds to 98% test accuracy | 0.80 s | < 1 s | yes |" in out
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.png").stat().st_size > 1000
    assert main([str(run), "--check"]) == 1  # the float32 target is missed in this made-up run


def test_a_fit_of_several_epochs_counts_every_epochs_samples():
    from bench.report import OURS, rate

    fit = {"stats": {"mean": 2.0}, "extra_info": {"samples": 60000, "epochs": 3}}
    assert rate(fit) == 90000 and rate({"stats": {"mean": 2.0}, "extra_info": {"samples": 60000}}) == 30000
    assert "mnist_accel".startswith(OURS) and not "sklearn".startswith(OURS)  # the chart's colours


def test_unreadable_run_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("bench.report: error: cannot read")


def test_seeds_rows_are_against_their_own_rendering(tmp_path, capsys):
    """In the seeds group each preset is against its rendering; the 5x and accuracy targets are checked on
    full-size rows only."""
    def seed(preset, role, mean, samples=60000, **figures):
        name = preset + ("" if role == "ours" else "-rendering")
        return _bench("seeds", name, mean, preset=preset, role=role, epochs=10, **{"samples": samples, **figures})

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": [
        seed("full-batch", "ours", 2.0, train_accuracy_at_140=0.89), seed("full-batch", "rendering", 16.0),
        seed("keras-mlp", "ours", 3.0, 48000, test_accuracy=0.965), seed("keras-mlp", "rendering", 9.0, 48000),
        seed("deep-sgd", "ours", 3.0), seed("deep-sgd", "rendering", 87.0)]}))
    assert main([str(path), "--check"]) == 1  # keras-mlp's 96.5% misses 97%
    out = capsys.readouterr().out
    assert "| full-batch | 2.000 |" in out and "| 8.00x |" in out
    assert "| keras-mlp | 3.000 |" in out and "| 3.00x |" in out
    assert "| full-batch preset vs the write-up's NumPy code | 8.00x | 5x | yes |" in out
    assert "| full-batch: training accuracy at iteration 140 | 89.00% | 85.00% | yes |" in out
    assert "| keras-mlp: test accuracy | 96.50% | 97.00% | NO |" in out
    assert "| deep-sgd on Numba vs the write-up's NumPy code | 29.00x | 30x | NO |" in out
    path.write_text(json.dumps({"benchmarks": [seed("full-batch", "ours", 2.0, 300, train_accuracy_at_140=0.5),
                                               seed("full-batch", "rendering", 16.0, 300)]}))
    assert main([str(path), "--check"]) == 0  # a --quick run: accuracy not measured, nothing missed
    assert "not measured (no full-size row)" in capsys.readouterr().out


def test_a_saved_run_names_its_machine_and_the_report_prints_it(tmp_path, capsys):
    """The hook pytest-benchmark calls before saving a run describes this machine; the report opens with it."""
    from bench.conftest import pytest_benchmark_update_machine_info

    machine_info = {"system": "Linux", "release": "6.1", "python_version": "3.11.7"}
    pytest_benchmark_update_machine_info(None, machine_info)
    ours = machine_info["mnist_accel"]
    assert ours["cpu"] and ours["cores"] >= 1 and ours["versions"]["numpy"]
    assert ours["blas"] and all(isinstance(b["threads"], int) and b["version"] for b in ours["blas"])
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"machine_info": machine_info, "benchmarks": [
        _bench("loop-784-100-10", "numba", 0.2, "float64")]}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Machine") and f"- CPU: {ours['cpu']}" in out
    assert f"{ours['blas'][0]['library']} {ours['blas'][0]['version']}" in out
    assert f"{ours['blas'][0]['threads']} threads" in out and f"numpy {ours['versions']['numpy']}" in out
    assert "- environment: " in out and "- first layer's GEMMs: " in out
    assert ours["first_layer"]["gemm"] in ("gemm_cpu", "BLAS")


def test_the_machine_description_records_what_steers_blas(monkeypatch):
    """OPENBLAS_CORETYPE picks OpenBLAS's kernels whatever the CPU, so a run records it."""
    from bench.machine import describe

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("NOT_STEERING_ANYTHING", "1")
    env = describe()["environment"]
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and "NOT_STEERING_ANYTHING" not in env


def test_a_run_saved_before_machine_descriptions_still_names_its_cpu(tmp_path, capsys):
    path = tmp_path / "run.json"
    cpu = {"brand_raw": "Intel(R) Xeon(R) Processor", "vendor_id_raw": "GenuineIntel", "count": 2, "family": 6,
           "model": 207, "flags": ["avx2", "avx512f", "fma"]}
    path.write_text(json.dumps({"machine_info": {"cpu": cpu}, "benchmarks": [_bench("loop-784-100-10", "numba", 0.2)]}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "- CPU: Intel(R) Xeon(R) Processor (GenuineIntel, family 6 model 207), 2 cores" in out
    assert "- vector extensions: avx2, fma, avx512f" in out and "not recorded in this run" in out


def test_float64_rows_take_their_floor_from_dgemm_and_float32_rows_from_sgemm(tmp_path, capsys):
    path = tmp_path / "run.json"
    loop = "loop-784-100-10"
    path.write_text(json.dumps({"benchmarks": [
        _bench(loop, "numba", 0.2, "float64"), _bench(loop, "numba", 0.35, "float32"),
        {"group": "peak", "name": "s", "stats": {"mean": 0.01}, "extra_info": {"sgemm_peak_gflops": 200.0}},
        {"group": "peak", "name": "d", "stats": {"mean": 0.01}, "extra_info": {"dgemm_peak_gflops": 100.0}}]}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| numba-float64 | 0.200 | 300,000 | 0.9500 | - | 245.0% |" in out  # 4.9e10 / 100e9 / 0.2
    assert "| numba-float32 | 0.350 | 171,429 | 0.9500 | - | 70.0% |" in out  # 4.9e10 / 200e9 / 0.35
    assert "Measured CPU SGEMM peak: 200 GFLOP/s." in out and "Measured CPU DGEMM peak: 100 GFLOP/s." in out


def test_results_hold_only_the_runs_the_readmes_link():
    """bench/results keeps the runs the README, the documentation (which sees them as docs/results) or the
    index links, and every such link resolves."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    results = root / "bench" / "results"
    readme, index = (root / "README.md").read_text(), (results / "README.md").read_text()
    run = r"[\w.-]+\.(?:json|md|png)"  # a saved run's file (bench/gpu.sh's dated folders are made on GPU machines)
    docs = "".join(p.read_text() for p in (root / "docs").glob("*.md"))
    linked = set(re.findall(rf"bench/results/({run})", readme)) | set(re.findall(rf"\]\(({run})\)", index))
    linked |= set(re.findall(rf"\]\(results/({run})\)", docs))
    linked.discard("README.md")
    kept = {p.name for p in results.iterdir() if p.name != "README.md"}
    assert kept == linked, (sorted(kept - linked), sorted(linked - kept))


def test_the_time_to_98_group_has_its_table_targets_and_frontier_chart(tmp_path, capsys):
    """Whole trainings over seeds: their own table, the speedrun's speed and accuracy targets read from
    ``extra_info`` (the timer's mean includes untimed parts), and the frontier chart; no bar chart for them."""
    def row(name, library, seconds, accuracies, to_98=None, samples=60000):
        per_seed = [seconds * f for f in (0.9, 1.0, 1.1)]
        info = {"backend": name, "library": library, "seeds": [0, 1, 2], "seconds": seconds, "epochs": 3,
                "test_accuracy": sum(accuracies) / 3, "seconds_per_seed": per_seed, "samples": samples,
                "test_accuracy_per_seed": accuracies, "seconds_to_98_per_seed": [to_98] * 3, "dtype": "float32"}
        if to_98 is not None:
            info["seconds_to_98"] = to_98
        return {"group": "time-to-98", "name": f"test[{name}]", "stats": {"mean": 100.0}, "extra_info": info}

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": [
        row("speedrun", "mnist_accel", 0.6, [0.981, 0.982, 0.980], 0.6),
        row("keras-mlp", "mnist_accel", 4.0, [0.975, 0.976, 0.977]),
        row("torch-speedrun", "torch", 2.1, [0.981, 0.980, 0.982], 2.1),
        row("sklearn", "sklearn", 30.0, [0.978, 0.979, 0.977]),
        {"group": "time-to-98", "name": "t98", "stats": {"mean": 3.0}, "extra_info": {"seconds_to_98": 0.8}}]}))
    frontier, bars = tmp_path / "frontier.png", tmp_path / "bars.png"
    assert main([str(path), "--frontier", str(frontier), "--png", str(bars), "--check"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "| speedrun | 0.600 | 0.9810 | 0.600 | 3 | 3 | 0.540, 0.600, 0.660 | 0.9810, 0.9820, 0.9800 |" in out
    assert "| sklearn | 30.000 | 0.9780 | - |" in out
    assert out.index("| speedrun |") < out.index("| torch-speedrun |") < out.index("| sklearn |")  # fastest first
    assert "| speedrun preset vs PyTorch on the same recipe (CPU) | 3.50x | 3x | yes |" in out
    assert "| speedrun: mean test accuracy over its seeds | 98.10% | 98.00% | yes |" in out
    assert "training seconds to 98% test accuracy | 0.80 s | < 1 s | yes |" in out  # the GPU's figure stays apart
    assert frontier.stat().st_size > 1000 and not bars.exists() and "not written" in captured.err
    assert main([str(path.with_name("none.json")), "--frontier", str(frontier)]) == 2
    path.write_text(json.dumps({"benchmarks": [_bench("loop-784-100-10", "numba", 0.2)]}))
    frontier.unlink()
    assert main([str(path), "--frontier", str(frontier)]) == 0 and not frontier.exists()


def test_the_compile_group_has_its_table_budgets_and_ratio_target(tmp_path, capsys):
    """First runs on a cold and a warm Numba cache: their own table, no bars, the cold-compile budgets
    (seconds, not ratios) and the tutorial's cold run on Numba against its run on NumPy (wall seconds)."""
    def row(name, cold, warm, wall, quick=False):
        info = {"backend": name, "cold_compile_seconds": cold, "warm_compile_seconds": warm, "quick": quick,
                "cold_wall_seconds": wall, "warm_wall_seconds": wall - cold + warm, "seconds": wall}
        return {"group": "compile", "name": f"test[{name}]", "stats": {"mean": 9.0}, "extra_info": info}

    path = tmp_path / "run.json"
    rows = [row("default-numba", 1.2, 0.2, 3.0), row("speedrun-numba", 1.7, 0.2, 3.0),
            row("tutorial-numba", 0.9, 0.01, 2.0), row("tutorial-numpy", 0, 0, 2.5)]
    path.write_text(json.dumps({"benchmarks": rows}))
    bars = tmp_path / "bars.png"
    assert main([str(path), "--png", str(bars), "--check"]) == 1  # the speedrun's budget is missed
    out = capsys.readouterr().out
    assert "| default-numba | 1.20 s | 0.20 s | 3.00 s | 2.00 s |" in out and not bars.exists()
    assert "| default preset: compilation on a cold Numba cache | 1.20 s | <= 1.5 s | yes |" in out
    assert "| speedrun preset: compilation on a cold Numba cache | 1.70 s | <= 1.5 s | NO |" in out
    assert "first tutorial run on a cold Numba cache vs the same run on NumPy (wall) | 1.25x | 1x | yes |" in out
