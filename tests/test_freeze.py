"""Freezing strategies: which layers train, how many parameters, and the recompile rule."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.freeze import freeze, summarize, trainable_blocks
from tlcourse.models import transfer_model

CONVS = ("squeeze", "expand1x1", "expand3x3")


@pytest.fixture()
def model():
    return transfer_model(classes=10, input_shape=(32, 32, 3), weights=None)


def _fire_layers(*names):
    return [f"{n}_{c}" for n in names for c in CONVS]


@pytest.mark.parametrize(
    ("strategy", "layers", "trainable", "frozen"),
    [
        # head: 512 * 10 + 10 = 5,130 parameters; the backbone has 722,496.
        ("E1", ["head_dense"], 5_130, 722_496),
        ("E2", [*_fire_layers("fire8", "fire9"), "head_dense"], 391_306, 336_320),
        (
            "E3",
            ["conv1", *_fire_layers(*(f"fire{i}" for i in range(2, 10))), "head_dense"],
            727_626,
            0,
        ),
        (
            "fire6",
            [*_fire_layers("fire6", "fire7", "fire8", "fire9"), "head_dense"],
            607_210,
            120_416,
        ),
    ],
)
def test_strategy_sets_trainable_layers_and_counts(model, strategy, layers, trainable, frozen):
    summary = freeze(model, strategy)
    assert list(summary.trainable_layers) == layers
    assert (summary.trainable_params, summary.frozen_params) == (trainable, frozen)
    assert summary.total_params == model.count_params() == 727_626
    assert summarize(model).trainable_params == trainable


def test_strategies_can_be_applied_in_any_order(model):
    freeze(model, "E1")
    freeze(model, "E3")
    assert summarize(model).frozen_params == 0
    freeze(model, "E2")
    assert not model.get_layer("fire7_squeeze").trainable
    assert model.get_layer("fire8_squeeze").trainable


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match=r"E1, E2, E3.*Received: strategy='E4'"):
        trainable_blocks("E4")


def test_freeze_recompiles_so_frozen_weights_do_not_move(model):
    """The trap: change `trainable` after compile and forget to recompile."""
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[np.arange(8)]
    model.train_on_batch(x, y)  # builds the train step with everything trainable
    freeze(model, "E1")
    before = model.get_layer("fire9_squeeze").kernel.numpy().copy()
    head_before = model.get_layer("head_dense").kernel.numpy().copy()
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(model.get_layer("fire9_squeeze").kernel.numpy(), before)
    assert not np.array_equal(model.get_layer("head_dense").kernel.numpy(), head_before)
