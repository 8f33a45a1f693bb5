"""Assignment 2, freezing: the transfer model, which layers train, recompiling, counting."""

from __future__ import annotations

import numpy as np

from tlcourse.grading.autotests import (
    Assignment,
    JudgeContext,
    Test,
    answer,
    prefixed,
    unprefixed,
)
from tlcourse.grading.kernel import record
from tlcourse.grading.student import checks

EXPERIMENTS = ("E1", "E2", "E3")
IMAGE_SIZES = (32, 64)


def inputs(_context: JudgeContext) -> dict[str, np.ndarray]:
    """Nothing but sizes: the probes build their own models."""
    return {"image_sizes": np.asarray(IMAGE_SIZES)}


def _probe_build_model(answers, given):
    build = answer(answers, "build_model")
    found = {}
    for size in given["image_sizes"]:
        found |= prefixed(str(size), record.model_summary(build(int(size))))
    return found


def _judge_build_model(results, given, context):
    conv1 = checks.imagenet_conv1(context.weights)
    for size in given["image_sizes"]:
        checks.check_model_summary(unprefixed(str(size), results), int(size), conv1)


def _new_model():
    from tlcourse.models import transfer_model

    return transfer_model(classes=10)


def _probe_freezing(answers, _given):
    apply_freezing = answer(answers, "apply_freezing")
    found = {}
    for experiment in EXPERIMENTS:
        model = apply_freezing(_new_model(), experiment)
        found |= prefixed(experiment, record.layer_flags(model))
    model = apply_freezing(apply_freezing(_new_model(), "E3"), "E2")
    return found | prefixed("E3-then-E2", record.layer_flags(model))


def _judge_freezing(results, _given, _context):
    for name, experiment in (*((e, e) for e in EXPERIMENTS), ("E3-then-E2", "E2")):
        flags = unprefixed(name, results)
        checks.check_trainable(flags["layers"], flags["trainable"], experiment)


def _probe_recompiled(answers, _given):
    return record.recompile_evidence(answer(answers, "apply_freezing"))


def _judge_recompiled(results, _given, _context):
    checks.check_recompile_evidence(results)


def _probe_count_parameters(answers, _given):
    from tlcourse.freeze import freeze

    count_parameters = answer(answers, "count_parameters")
    found = {}
    for experiment in EXPERIMENTS:
        model = _new_model()
        freeze(model, experiment)
        found[experiment] = record.counts(count_parameters(model), "count_parameters")
    return found


def _judge_count_parameters(results, _given, context):
    from tlcourse.models import transfer_model

    build = lambda: transfer_model(classes=10, weights=None)  # noqa: E731 (counts only)
    for experiment, expected in checks.expected_counts(build).items():
        checks.check_counts(results[experiment], expected, experiment)


def _probe_image_size(answers, _given):
    return {"image_size": record.integer(answer(answers, "IMAGE_SIZE"), "IMAGE_SIZE")}


def _judge_image_size(results, _given, _context):
    size = int(results["image_size"])
    checks.check_image_size(size)
    if size % 32:
        raise AssertionError("IMAGE_SIZE must be a multiple of 32")
    if size != 64:
        raise AssertionError("the smallest multiple of 32 with a 3x3 map at fire9 is 64")


ASSIGNMENT = Assignment(
    "02-freezing",
    inputs,
    {
        "test_build_model": Test(_probe_build_model, _judge_build_model),
        "test_freezing": Test(_probe_freezing, _judge_freezing),
        "test_recompiled": Test(_probe_recompiled, _judge_recompiled),
        "test_count_parameters": Test(_probe_count_parameters, _judge_count_parameters),
        "test_image_size": Test(_probe_image_size, _judge_image_size),
    },
)
