"""The options the write-up presets are made of: every new option is validated with a one-line error, and the
command line prints what the write-ups print (each preset's own settings: ``test_presets``)."""

from __future__ import annotations

import pytest

from mnist_accel.cli.train import main
from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError

BAD = [
    (dict(init="normal:0"), "--init 'normal:0': normal:S needs a finite scale S above 0"),
    (dict(init="orthogonal"), "--init 'orthogonal' is not one of"),
    (dict(schedule="drop"), "--schedule drop needs --lr-drop-at N"),
    (dict(schedule="drop", lr_drop_at=0), "at least 1"),
    (dict(schedule="drop", lr_drop_at=5, lr_drop_to=-1.0), "--lr-drop-to must be a finite number above 0"),
    (dict(lr_drop_at=5), "--lr-drop-at and --lr-drop-to belong to --schedule drop"),
    (dict(eps=0.0), "--eps must be a finite number above 0"),
    (dict(print_every=0), "--print-every must be at least 1"),
    (dict(val_from="start"), "--val-from 'start' is not one of random, end"),
    (dict(adam_form="torch"), "--adam-form 'torch' is not one of pytorch, keras"),
    (dict(path="loop", hidden=()), "--hidden needs one or more positive widths, got []"),
]


def test_no_hidden_layer_is_a_vectorized_model():
    """scikit-learn's hidden_layer_sizes=(): one (W, b) layer, which the vectorized path trains."""
    assert resolve(path="vectorized", hidden=()).hidden == ()


@pytest.mark.parametrize("overrides, message", BAD, ids=[m for _, m in BAD])
def test_bad_options_are_one_line_config_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        resolve(**overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_init_on_the_command_line_exits_2(capsys, mnist):
    assert main(["--init", "normal:x", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "normal:S needs a finite scale" in err


def test_print_every_prints_the_write_ups_iterations(capsys, mnist):
    """Every 10th epoch from the first (the write-up's ``i % 10 == 0``) and the last."""
    assert main(["--preset", "full-batch", "--epochs", "25", "--train-samples", "500", "--test-samples", "100"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/25", "11/25", "21/25", "25/25"]
    for line in lines:  # the write-up's cost: the loss averaged over the 10 outputs too
        words = line.split()
        assert words[5] == "cost" and float(words[6]) == pytest.approx(float(words[4]) / 10, abs=1e-4)


def test_print_cost_is_an_ordinary_flag(capsys, mnist):
    assert main(["--epochs", "1", "--train-samples", "500", "--test-samples", "100", "--print-cost"]) == 0
    assert " cost " in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch"))
    assert main(["--preset", "full-batch", "--no-print-cost", "--epochs", "1", "--train-samples", "500",
                 "--test-samples", "100"]) == 0
    assert " cost " not in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch"))


def test_a_validation_split_is_printed(capsys, mnist):
    assert main(["--preset", "keras-mlp", "--epochs", "1", "--train-samples", "1000", "--test-samples", "100"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch"))
    assert "  val loss " in line and line.index("val loss") < line.index("test loss")


def test_every_option_is_defined_once_and_the_rest_derives_from_it():
    """The training command's flags, the sweep's, what a resumed run or sweep may change and what a sweep may
    not search all come from TrainConfig's fields."""
    import dataclasses

    from mnist_accel.cli.train import build_parser
    from mnist_accel.config import EVALUATION, RUN, TrainConfig, options
    from mnist_accel.sweep import run as sweep_run, space
    from mnist_accel.training import checkpoint

    with_flags = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]}
    for parser in (build_parser(), sweep_run.build_parser()):
        dests = {a.dest for a in parser._actions}
        assert with_flags <= dests and not (options(flag=False) and set(options(flag=False)) & dests)
    assert set(checkpoint.MAY_CHANGE) == {"epochs", *options(role=RUN)}
    assert set(sweep_run.MAY_CHANGE) == set(options(role=RUN))
    assert set(space.NOT_SEARCHED) == set(options(role=RUN)) | set(options(role=EVALUATION))
    assert all(f.metadata["help"] for f in dataclasses.fields(TrainConfig))
