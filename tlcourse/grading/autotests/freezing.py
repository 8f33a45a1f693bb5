"""Assignment 2, freezing: the transfer model, which layers train, recompiling, counting.

The rubric prices a mistake by what it leaves of the exercise. A backbone without its ImageNet
weights, a count of tensors instead of parameters or wrong layers frozen in several
experiments cost the whole cell; a head right but for its last activation (no softmax, a ReLU
before it), one experiment frozen wrong, frozen layers never unfrozen, ``model.trainable =
False`` over right layer flags, or counts in the wrong order cost one point; a wrong loss in
the recompile and a working but not the smallest image size half a point.

``test_recompiled`` judges only the recompile: training after ``apply_freezing`` must leave the
layers it froze unchanged, whichever they are (see
:func:`~tlcourse.grading.kernel.record.recompile_evidence`).
"""

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
    return record.freezing_flags(answer(answers, "apply_freezing"), _new_model)


def _judge_freezing(results, _given, _context):
    checks.check_freezing_flags(results)


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
    tensors = checks.miscounts(build)
    for experiment, expected in checks.expected_counts(build).items():
        checks.check_counts(results[experiment], expected, experiment, tensors[experiment])


def _probe_image_size(answers, _given):
    return {"image_size": record.integer(answer(answers, "IMAGE_SIZE"), "IMAGE_SIZE")}


def _judge_image_size(results, _given, _context):
    checks.check_smallest_image_size(int(results["image_size"]))


ASSIGNMENT = Assignment(
    "02-freezing",
    inputs,
    {
        "test_build_model": Test(
            _probe_build_model,
            _judge_build_model,
            {checks.RANDOM_BACKBONE: 2, checks.NO_SOFTMAX: 1, checks.RELU_BEFORE_SOFTMAX: 1},
        ),
        "test_freezing": Test(
            _probe_freezing,
            _judge_freezing,
            {
                checks.WRONG_FROZEN: 1,
                checks.STAYS_FROZEN: 1,
                checks.MODEL_FROZEN: 1,
                checks.WRONG_FROZEN_SEVERAL: 2,
            },
        ),
        "test_recompiled": Test(
            _probe_recompiled,
            _judge_recompiled,
            {checks.NOT_RECOMPILED: 1, checks.WRONG_LOSS: 0.5},
        ),
        "test_count_parameters": Test(
            _probe_count_parameters,
            _judge_count_parameters,
            {checks.COUNTS_SWAPPED: 1, checks.COUNTED_TENSORS: 2},
        ),
        "test_image_size": Test(
            _probe_image_size,
            _judge_image_size,
            {checks.TINY_MAPS: 1, checks.NOT_SMALLEST: 0.5},
        ),
    },
)
