"""Assignment 3, fine-tuning: the config, the run, its curves and its confusion matrix.

The accuracy points are not here: the grader evaluates the handed-in weights on its own
held-out images (:mod:`tlcourse.grading.grade.accuracy`).
"""

from __future__ import annotations

import numpy as np

from tlcourse.grading.autotests import Assignment, JudgeContext, Test, answer
from tlcourse.grading.kernel import record
from tlcourse.grading.student import checks


def inputs(_context: JudgeContext) -> dict[str, np.ndarray]:
    """Nothing: these tests read what the notebook built."""
    return {}


def _history(answers):
    result = answer(answers, "result")
    return record.history(getattr(result, "history", result))


def validation_size(context: JudgeContext) -> int:
    """How many validation images the notebook's budget gives (computed as the notebook does)."""
    from tlcourse.pipeline import stratified_split, take_per_class

    budget = context.budget
    labels = context.train.labels
    if budget.train_per_class is not None:
        labels = labels[take_per_class(labels, budget.train_per_class, seed=budget.seed)]
    return len(stratified_split(labels, budget.val_fraction, seed=budget.seed)[1])


def _probe_config(answers, _given):
    return record.config(answer(answers, "CONFIG"))


def _judge_config(results, _given, context):
    checks.check_config_values(results, context.budget)


def _probe_train(answers, _given):
    return _history(answers)


def _judge_train(results, _given, context):
    checks.check_not_collapsed({name: list(values) for name, values in results.items()})
    if len(results["loss"]) != context.budget.epochs:
        raise AssertionError(f"train for budget.epochs ({context.budget.epochs}) epochs")


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
    checks.check_confusion_matrix(results["matrix"], accuracy, validation_size(context))


ASSIGNMENT = Assignment(
    "03-finetuning",
    inputs,
    {
        "test_config": Test(_probe_config, _judge_config),
        "test_train": Test(_probe_train, _judge_train),
        "test_curves": Test(_probe_curves, _judge_curves),
        "test_confusion": Test(_probe_confusion, _judge_confusion),
    },
)
