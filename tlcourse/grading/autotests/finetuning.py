"""Assignment 3, fine-tuning: the config, the run, its curves and its confusion matrix.

The accuracy points are not here: the grader evaluates the handed-in weights on its own
held-out images (:mod:`tlcourse.grading.grade.accuracy`).
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


def inputs(_context: JudgeContext) -> dict[str, np.ndarray]:
    """Nothing: these tests read what the notebook built."""
    return {}


def _history(answers):
    result = answer(answers, "result")
    return record.history(getattr(result, "history", result))


def validation_split(context: JudgeContext):
    """The notebook's (training, validation) images under its budget, computed as it does."""
    from tlcourse.pipeline import stratified_split, take_per_class

    budget = context.budget
    train = context.train
    if budget.train_per_class is not None:
        train = train.subset(take_per_class(train.labels, budget.train_per_class, seed=budget.seed))
    train_idx, val_idx = stratified_split(train.labels, budget.val_fraction, seed=budget.seed)
    return train.subset(train_idx), train.subset(val_idx)


def _probe_config(answers, _given):
    return record.config(answer(answers, "CONFIG"))


def _judge_config(results, _given, context):
    checks.check_config_values(results, context.budget)


def _probe_train(answers, _given):
    found = prefixed("history", _history(answers))
    found |= prefixed("config", record.config(answer(answers, "CONFIG")))
    result = answer(answers, "result")
    trained = getattr(result, "config", None)  # fit's TrainResult says what trained, and on what
    if trained is not None:
        found |= prefixed("trained", record.config(trained))
    if getattr(result, "trained_on", None) is not None:
        found["trained_on"] = record.array(result.trained_on, "result.trained_on")
    return found


def _judge_train(results, _given, context):
    history = {name: list(values) for name, values in unprefixed("history", results).items()}
    config, trained = unprefixed("config", results), unprefixed("trained", results)
    checks.check_not_collapsed(history, config=trained or config)
    if len(history.get("loss", [])) != context.budget.epochs:
        raise AssertionError(f"train for budget.epochs ({context.budget.epochs}) epochs")
    checks.check_run_settings(config, trained)
    if "trained_on" in results:
        _, val = validation_split(context)
        checks.check_not_trained_on_validation(results["trained_on"], val.digests())


def _probe_curves(answers, _given):
    return record.figure(answer(answers, "fig"))


def _judge_curves(results, _given, _context):
    lines = results["lines_per_axis"]
    if len(lines) != 2:
        raise AssertionError("one panel for the loss, one for the accuracy")
    if lines[1] < 2:
        raise AssertionError("draw training and validation accuracy")


def _probe_confusion(answers, _given):
    history = _history(answers)
    if "val_accuracy" not in history or not len(history["val_accuracy"]):
        raise AssertionError("The history has no 'val_accuracy': fit with validation data.")
    return {
        "matrix": record.array(answer(answers, "matrix"), "confusion matrix"),
        "val_accuracy": history["val_accuracy"][-1:],
    }


def _judge_confusion(results, _given, context):
    accuracy = float(results["val_accuracy"][-1])
    _, val = validation_split(context)
    checks.check_confusion_matrix(results["matrix"], accuracy, val.labels)


ASSIGNMENT = Assignment(
    "03-finetuning",
    inputs,
    {
        "test_config": Test(
            _probe_config,
            _judge_config,
            {checks.NOT_FINE_TUNED: 1, checks.NOT_STANDARDISED: 1, checks.RATE_TOO_HIGH: 1},
        ),
        "test_train": Test(
            _probe_train,
            _judge_train,
            {checks.COLLAPSED: 2, checks.CONFIG_NOT_USED: 1, checks.TRAINED_ON_VALIDATION: 2},
        ),
        "test_curves": Test(_probe_curves, _judge_curves),
        "test_confusion": Test(
            _probe_confusion,
            _judge_confusion,
            {
                checks.TRANSPOSED: 1,
                checks.MATRIX_OF_FRACTIONS: 1,
                checks.MATRIX_NOT_VALIDATION: 2,
                checks.MATRIX_NOT_THIS_MODEL: 2,
            },
        ),
    },
)
