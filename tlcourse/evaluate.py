"""Accuracy, precision, recall and the confusion matrix, as plain numbers.

Nothing here prints or plots: ``tlcourse.plots`` draws what these functions return, and
``tlcourse.results`` stores it. The metrics themselves are scikit-learn's.

Labels come in two forms and every function accepts both: integer class indices of shape
``(N,)`` (or ``(N, 1)``, as ``keras.datasets.cifar10`` returns them) and rows of scores of shape
``(N, C)``: one-hot targets, probabilities or logits, reduced to the index of their largest entry.
Per-class accuracy is per-class recall: the fraction of a class's examples predicted correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The scores of one set of predictions against the true labels.

    Attributes:
        accuracy: fraction of examples predicted correctly, 0..1.
        confusion_matrix: int64 ``(C, C)``; row ``i`` counts examples of class ``i``,
            column ``j`` those predicted as class ``j``.
        precision: per class ``(C,)``, 0 for a class never predicted.
        recall: per class ``(C,)`` (per-class accuracy), 0 for a class absent from the labels.
        class_names: the ``C`` class names, in label order.
    """

    accuracy: float
    confusion_matrix: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # Frozen means frozen: store read-only copies with fixed dtypes.
        for name, dtype in (
            ("confusion_matrix", np.int64),
            ("precision", np.float64),
            ("recall", np.float64),
        ):
            array = np.array(getattr(self, name), dtype=dtype)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "accuracy", float(self.accuracy))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def support(self) -> np.ndarray:
        """Number of examples of each class ``(C,)``: the row sums of the confusion matrix."""
        return self.confusion_matrix.sum(axis=1)

    @property
    def num_examples(self) -> int:
        """Number of examples evaluated."""
        return int(self.confusion_matrix.sum())

    def per_class(self) -> list[dict[str, Any]]:
        """One dict per class: ``{"class", "precision", "recall", "support"}``."""
        return [
            {
                "class": name,
                "precision": float(p),
                "recall": float(r),
                "support": int(s),
            }
            for name, p, r, s in zip(
                self.class_names, self.precision, self.recall, self.support, strict=True
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (lists, floats and ints only); see ``from_dict``."""
        return {
            "accuracy": self.accuracy,
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion_matrix.tolist(),
            "precision": self.precision.tolist(),
            "recall": self.recall.tolist(),
            "support": self.support.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Rebuild an ``Evaluation`` from ``to_dict()`` output (extra keys are ignored)."""
        return cls(
            accuracy=data["accuracy"],
            confusion_matrix=np.asarray(data["confusion_matrix"]),
            precision=np.asarray(data["precision"]),
            recall=np.asarray(data["recall"]),
            class_names=tuple(data["class_names"]),
        )


def _to_labels(values: Any, argument: str) -> np.ndarray:
    """Integer labels ``(N,)`` from labels ``(N,)``/``(N, 1)`` or scores ``(N, C)``."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        return np.argmax(array, axis=1).astype(np.int64)
    if array.ndim == 2:  # (N, 1): a column of labels, as keras.datasets returns them
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"`{argument}` must hold integer labels of shape (N,) or scores / one-hot rows of "
            f"shape (N, num_classes). Received: {argument}.shape={array.shape}"
        )
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind in "fb" and np.all(np.mod(array, 1) == 0):
        return array.astype(np.int64)
    raise ValueError(
        f"`{argument}` is 1-D, so it must hold integer class indices; pass scores as a "
        f"2-D array of shape (N, num_classes). Received: {argument} with dtype={array.dtype} "
        f"and values such as {array[:3].tolist()}"
    )


def predicted_labels(probabilities_or_labels: Any) -> np.ndarray:
    """Predicted class indices ``(N,)``: argmax of ``(N, C)`` scores, or 1-D labels as they are."""
    return _to_labels(probabilities_or_labels, "probabilities_or_labels")


def true_labels(y: Any) -> np.ndarray:
    """True class indices ``(N,)`` from integer labels ``(N,)``/``(N, 1)`` or one-hot ``(N, C)``."""
    return _to_labels(y, "y")


def _check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(class_names, str) or len(class_names) == 0:
        raise ValueError(
            "`class_names` must be a non-empty sequence of names, one per class in label order, "
            f"e.g. tlcourse.config.CIFAR10_CLASSES. Received: class_names={class_names!r}"
        )
    return tuple(str(name) for name in class_names)


def _check_columns(values: Any, argument: str, num_classes: int) -> None:
    shape = np.shape(values)
    if len(shape) == 2 and shape[1] > 1 and shape[1] != num_classes:
        raise ValueError(
            f"`{argument}` has one column per class, so it needs {num_classes} columns to match "
            f"`class_names`. Received: {argument}.shape={tuple(shape)}"
        )


def evaluate_predictions(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> Evaluation:
    """Score predictions against true labels.

    Args:
        y_true: true labels, integer ``(N,)``/``(N, 1)`` or one-hot ``(N, C)``.
        y_pred: predictions, integer ``(N,)`` or scores ``(N, C)`` (probabilities or logits).
        class_names: the ``C`` class names in label order; every class gets a row and a
            column in the confusion matrix, even one absent from both label arrays.

    Returns:
        An ``Evaluation``; precision and recall are 0 where undefined (``zero_division=0``).
    """
    names = _check_class_names(class_names)
    num_classes = len(names)
    _check_columns(y_true, "y_true", num_classes)
    _check_columns(y_pred, "y_pred", num_classes)
    truth = true_labels(y_true)
    pred = predicted_labels(y_pred)
    if len(truth) != len(pred):
        raise ValueError(
            "`y_true` and `y_pred` must hold one entry per example, so the same number. "
            f"Received: len(y_true)={len(truth)}, len(y_pred)={len(pred)}"
        )
    if len(truth) == 0:
        raise ValueError("There is nothing to evaluate. Received: 0 examples")
    for argument, labels in (("y_true", truth), ("y_pred", pred)):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            raise ValueError(
                f"`{argument}` holds labels outside 0..{num_classes - 1} "
                f"({num_classes} class names). Received: {argument} values {np.unique(bad)[:5]}"
            )
    labels = np.arange(num_classes)
    precision, recall, _, _ = precision_recall_fscore_support(
        truth, pred, labels=labels, average=None, zero_division=0
    )
    return Evaluation(
        accuracy=accuracy_score(truth, pred),
        confusion_matrix=confusion_matrix(truth, pred, labels=labels),
        precision=precision,
        recall=recall,
        class_names=names,
    )


def evaluate_model(model: Any, dataset: Iterable, class_names: Sequence[str]) -> Evaluation:
    """Predict every batch of ``dataset`` with ``model`` and score the predictions.

    Labels are collected in the same pass as the predictions, so a dataset that shuffles on
    each iteration still pairs each prediction with its own label.

    Args:
        model: a Keras model mapping a batch of images to ``(batch, C)`` scores.
        dataset: a ``tf.data.Dataset`` (or any iterable) of ``(images, labels)`` batches; labels
            one-hot ``(batch, C)`` or integer ``(batch,)``.
        class_names: the ``C`` class names in label order.
    """
    names = _check_class_names(class_names)
    truth: list[np.ndarray] = []
    pred: list[np.ndarray] = []
    for batch in dataset:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            raise ValueError(
                "`dataset` must yield `(images, labels)` pairs, e.g. a batched tf.data.Dataset "
                f"of (images, one_hot_labels). Received: an element of type {type(batch).__name__}"
            )
        images, labels = batch
        scores = np.asarray(model.predict_on_batch(images))
        if scores.ndim != 2 or scores.shape[1] != len(names):
            raise ValueError(
                f"The model must output one score per class, shape (batch, {len(names)}), to "
                f"match `class_names`. Received: model output of shape {scores.shape}"
            )
        truth.append(true_labels(labels))
        pred.append(predicted_labels(scores))
    if not truth:
        raise ValueError("`dataset` yielded no batches, so there is nothing to evaluate.")
    return evaluate_predictions(np.concatenate(truth), np.concatenate(pred), names)


def chance_accuracy(num_classes: int) -> float:
    """Accuracy of guessing uniformly at random among ``num_classes`` classes: ``1 / C``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TypeError(f"`num_classes` must be an int. Received: num_classes={num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"`num_classes` must be at least 1. Received: num_classes={num_classes}")
    return 1.0 / num_classes
