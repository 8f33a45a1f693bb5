"""Protocols: the study as written, its fix, and the recipe ladder, as data."""

from __future__ import annotations

import pytest

from tlcourse.protocols import PROTOCOLS, check_protocol
from tlcourse.reproduce import BUDGETS, run_config


def test_study_is_train_config_defaults():
    config = run_config("E3", BUDGETS["paper"], "study", seed=0)
    assert (config.learning_rate, config.image_size, config.normalization) == (1e-3, 32, "unit")
    assert (config.epochs, config.batch_size, config.optimizer) == (30, 32, "adam")


def test_fix_lowers_the_learning_rate_only_where_the_backbone_trains():
    assert run_config("E1", BUDGETS["paper"], "study-lr1e-4", seed=0).learning_rate == 1e-3
    for experiment in ("E2", "E3"):
        assert run_config(experiment, BUDGETS["paper"], "study-lr1e-4", 0).learning_rate == 1e-4


def test_each_step_inherits_the_one_before():
    config = run_config("E3", BUDGETS["smoke"], "imagenet-norm-128px", seed=3)
    assert (config.learning_rate, config.normalization, config.image_size) == (
        1e-4,
        "imagenet",
        128,
    )
    assert config.seed == 3 and config.epochs == BUDGETS["smoke"].epochs


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_protocol_gives_valid_configs(name):
    for experiment in ("E1", "E2", "E3"):
        run_config(experiment, BUDGETS["smoke"], name, seed=0)
    assert PROTOCOLS[name].description


def test_unknown_protocol_lists_the_names():
    with pytest.raises(ValueError, match=r"'study'.*Received: protocol='fast'"):
        check_protocol("fast")
