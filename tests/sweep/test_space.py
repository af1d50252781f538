"""The --space syntax: each form becomes the Optuna distribution it documents, bad terms are refused in one
line before any trial, and grids list every point."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError
from mnist_accel.sweep.space import DEFAULT_GRID, DEFAULT_SPACE, check_space, grid, grid_size, overrides, parse_space


def test_each_form_of_term():
    space = parse_space(["lr=1e-4:1e-1:log", "dropout=0:0.5", "batch-size=32:512:32", "hidden=64,256x128",
                         "optimizer=adam,sgd", "bias=true,false", "epochs=1:4", "weight_decay=0:1e-3:5e-4"])
    assert space["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert space["dropout"] == FloatDistribution(0.0, 0.5)
    assert space["batch_size"] == IntDistribution(32, 512, step=32)
    assert space["hidden"] == CategoricalDistribution([64, "256x128"])
    assert space["optimizer"] == CategoricalDistribution(["adam", "sgd"])
    assert space["bias"] == CategoricalDistribution([True, False])
    assert space["epochs"] == IntDistribution(1, 4)
    assert space["weight_decay"] == FloatDistribution(0.0, 1e-3, step=5e-4)


def test_hidden_choices_become_layer_tuples():
    assert overrides({"hidden": 64, "lr": 0.1}) == {"hidden": (64,), "lr": 0.1}
    assert overrides({"hidden": "256x128"}) == {"hidden": (256, 128)}


BAD = [
    ("lr", "NAME=LOW:HIGH"),
    ("lr=", "NAME=LOW:HIGH"),
    ("foo=1,2", "'foo' is not a searchable option"),
    ("seed=1,2", "set it with its flag"),
    ("backend=numpy,numba", "set it with its flag"),
    ("lr=a:1", "'a' is not a number"),
    ("lr=1e-1:1e-4", "low end must be below"),
    ("lr=0:1:log", "log scale needs a low end above 0"),
    ("lr=1e-3:1:0", "step must be above 0"),
    ("lr=1:2:3:4", "too many ':'"),
    ("lr=nan:1", "not a finite number"),
    ("hidden=1.5:8", "whole numbers"),
    ("hidden=64,abc", "widths like 128"),
    ("bias=yes", "true or false"),
    ("optimizer=0:1", "not numeric"),
    ("hidden=64,64", "listed twice"),
]


@pytest.mark.parametrize("term, message", BAD, ids=[t for t, _ in BAD])
def test_bad_terms_say_what_is_wrong(term, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")) as info:
        parse_space([term])
    assert "\n" not in str(info.value)


def test_a_name_given_twice_is_refused():
    with pytest.raises(ConfigError, match="names lr twice"):
        parse_space(["lr=0.1,0.2", "lr=1e-3:1e-1"])


def test_values_the_options_refuse_are_caught_before_any_trial():
    with pytest.raises(ConfigError, match=r"dropout: the value 1.0 is refused.*\[0, 1\)"):
        check_space(parse_space(["dropout=0:1"]), resolve())
    with pytest.raises(ConfigError, match="batch_size: the value 0 is refused"):
        check_space(parse_space(["batch_size=0,32"]), resolve())
    check_space(parse_space(["dropout=0:0.9", "batch_size=1,32"]), resolve())


def test_default_spaces_are_valid_around_the_default_preset():
    for terms in (DEFAULT_SPACE, DEFAULT_GRID):
        check_space(parse_space(terms), resolve())
    assert set(parse_space(DEFAULT_SPACE)) == {"lr", "hidden", "batch_size", "dropout"}
    assert grid_size(grid(parse_space(DEFAULT_GRID))) == 24


def test_grid_points():
    points = grid(parse_space(["hidden=64,128", "batch_size=32:128:32", "dropout=0:0.3:0.1"]))
    assert points == {"hidden": [64, 128], "batch_size": [32, 64, 96, 128], "dropout": [0.0, 0.1, 0.2, 0.3]}
    assert grid_size(points) == 32


def test_grid_refuses_a_continuous_range():
    with pytest.raises(ConfigError, match="grid needs a finite list for lr"):
        grid(parse_space(["lr=1e-3:1e-1:log"]))
