"""tlcourse.evaluate: known answers on small cases, then a real Keras model on tf.data."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import precision_score, recall_score

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.evaluate import (
    Evaluation,
    chance_accuracy,
    evaluate_model,
    evaluate_predictions,
    predicted_labels,
    true_labels,
)

NAMES = ("cat", "dog", "bird")
# Worked by hand: 8 examples, 5 correct.
Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 1, 2, 2, 0])
EXPECTED_MATRIX = np.array(
    [
        [2, 1, 0],  # cats: 2 right, 1 called dog
        [0, 2, 1],  # dogs: 2 right, 1 called bird
        [1, 0, 1],  # birds: 1 right, 1 called cat
    ]
)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def test_three_class_example_matches_hand_and_sklearn() -> None:
    result = evaluate_predictions(Y_TRUE, Y_PRED, NAMES)

    assert result.accuracy == pytest.approx(5 / 8)
    np.testing.assert_array_equal(result.confusion_matrix, EXPECTED_MATRIX)
    assert result.confusion_matrix.dtype == np.int64
    # precision = diagonal / column sums, recall = diagonal / row sums
    np.testing.assert_allclose(result.precision, [2 / 3, 2 / 3, 1 / 2])
    np.testing.assert_allclose(result.recall, [2 / 3, 2 / 3, 1 / 2])
    np.testing.assert_allclose(result.precision, precision_score(Y_TRUE, Y_PRED, average=None))
    np.testing.assert_allclose(result.recall, recall_score(Y_TRUE, Y_PRED, average=None))
    assert result.class_names == NAMES
    np.testing.assert_array_equal(result.support, [3, 3, 2])
    assert result.num_examples == 8


def test_one_hot_scores_and_int_labels_agree() -> None:
    from_ints = evaluate_predictions(Y_TRUE, Y_PRED, NAMES)
    rng = np.random.default_rng(0)
    # Scores whose largest entry is the predicted class, as a softmax output would be.
    scores = rng.uniform(0.0, 0.4, size=(len(Y_PRED), 3))
    scores[np.arange(len(Y_PRED)), Y_PRED] = 0.9
    from_rows = evaluate_predictions(one_hot(Y_TRUE, 3), scores, NAMES)
    from_column = evaluate_predictions(Y_TRUE[:, None], Y_PRED.astype(float), NAMES)

    for other in (from_rows, from_column):
        assert other.accuracy == from_ints.accuracy
        np.testing.assert_array_equal(other.confusion_matrix, from_ints.confusion_matrix)
        np.testing.assert_array_equal(other.precision, from_ints.precision)
        np.testing.assert_array_equal(other.recall, from_ints.recall)


def test_label_helpers() -> None:
    np.testing.assert_array_equal(predicted_labels([[0.1, 0.7, 0.2], [3.0, -1.0, 0.0]]), [1, 0])
    np.testing.assert_array_equal(predicted_labels([2, 0, 1]), [2, 0, 1])
    np.testing.assert_array_equal(true_labels(one_hot(np.array([2, 0]), 3)), [2, 0])
    # keras.datasets.cifar10 gives labels of shape (N, 1): a column, not one class.
    np.testing.assert_array_equal(true_labels(np.array([[3], [7]])), [3, 7])
    np.testing.assert_array_equal(true_labels(tf.constant([1, 2])), [1, 2])
    with pytest.raises(ValueError, match=r"integer class indices.*Received: y with dtype"):
        true_labels(np.array([0.2, 0.8]))
    with pytest.raises(ValueError, match=r"Received: probabilities_or_labels.shape=\(2, 2, 2\)"):
        predicted_labels(np.zeros((2, 2, 2)))


def test_absent_classes_get_a_row_and_zero_scores() -> None:
    # CIFAR-10 names, but only classes 0 and 1 appear; class 2 is predicted and never true.
    result = evaluate_predictions([0, 0, 1, 1], [0, 2, 1, 1], CIFAR10_CLASSES)

    assert result.confusion_matrix.shape == (10, 10)
    assert result.accuracy == pytest.approx(0.75)
    assert result.precision[2] == 0.0 and result.recall[2] == 0.0  # zero_division=0, no NaN
    np.testing.assert_array_equal(result.precision[3:], 0.0)
    np.testing.assert_array_equal(result.recall[3:], 0.0)
    assert result.confusion_matrix[0, 2] == 1
    assert result.per_class()[9] == {
        "class": "truck",
        "precision": 0.0,
        "recall": 0.0,
        "support": 0,
    }


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1, 2], [0, 1], r"same number\. Received: len\(y_true\)=3, len\(y_pred\)=2"),
        ([0, 1], np.zeros((2, 4)), r"needs 3 columns.*Received: y_pred.shape=\(2, 4\)"),
        (np.zeros((2, 5)), [0, 1], r"needs 3 columns.*Received: y_true.shape=\(2, 5\)"),
        ([0, 3], [0, 1], r"outside 0\.\.2.*Received: y_true values \[3\]"),
        ([0, 1], [0, -1], r"outside 0\.\.2.*Received: y_pred values \[-1\]"),
        ([], [], r"nothing to evaluate\. Received: 0 examples"),
    ],
)
def test_bad_inputs_raise_with_the_received_value(y_true, y_pred, message) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(y_true, y_pred, NAMES)


def test_class_names_must_be_a_sequence() -> None:
    with pytest.raises(ValueError, match="Received: class_names='cat'"):
        evaluate_predictions([0], [0], "cat")


def test_per_class_and_to_dict_round_trip_through_json() -> None:
    result = evaluate_predictions(Y_TRUE, Y_PRED, NAMES)

    assert result.per_class()[2] == {"class": "bird", "precision": 0.5, "recall": 0.5, "support": 2}
    data = json.loads(json.dumps(result.to_dict()))
    assert data["confusion_matrix"] == EXPECTED_MATRIX.tolist()
    assert data["accuracy"] == 0.625
    back = Evaluation.from_dict(data)
    np.testing.assert_array_equal(back.confusion_matrix, result.confusion_matrix)
    np.testing.assert_array_equal(back.precision, result.precision)
    assert back.class_names == NAMES


def test_evaluation_is_immutable() -> None:
    result = evaluate_predictions(Y_TRUE, Y_PRED, NAMES)
    with pytest.raises(AttributeError):
        result.accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.confusion_matrix[0, 0] = 99


def _softmax_model(num_classes: int) -> keras.Model:
    """A model whose prediction is the argmax of its input: easy to check by hand."""
    inputs = keras.Input((num_classes,))
    outputs = keras.layers.Activation("softmax", name="predictions")(inputs)
    return keras.Model(inputs, outputs)


def test_evaluate_model_on_a_shuffled_dataset_matches_manual_computation() -> None:
    rng = np.random.default_rng(1)
    n, c = 203, 4
    scores = rng.normal(size=(n, c)).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    # A dataset reshuffled on every pass: iterating it twice would pair the wrong labels.
    dataset = (
        tf.data.Dataset.from_tensor_slices((scores, one_hot(labels, c)))
        .shuffle(n, seed=3, reshuffle_each_iteration=True)
        .batch(16)
    )

    result = evaluate_model(_softmax_model(c), dataset, ["a", "b", "c", "d"])

    manual = np.mean(np.argmax(scores, axis=1) == labels)
    assert result.accuracy == pytest.approx(manual)
    assert 0.15 < manual < 0.4  # random scores: about chance, so misalignment would not hide
    expected = evaluate_predictions(labels, scores, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(result.confusion_matrix, expected.confusion_matrix)


def test_evaluate_model_with_a_perfect_dense_model_and_int_labels() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    labels = np.argmax(x, axis=1)
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3, name="head_conv")
    model = keras.Model(inputs, keras.layers.Softmax(name="predictions")(dense(inputs)))
    dense.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32)])
    dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8)

    result = evaluate_model(model, dataset, NAMES)

    assert result.accuracy == 1.0
    np.testing.assert_array_equal(result.support, np.bincount(labels, minlength=3))


def test_evaluate_model_checks_the_model_output_against_class_names() -> None:
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4), np.float32), [0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"shape \(batch, 3\).*Received: model output of shape"):
        evaluate_model(_softmax_model(4), dataset.batch(2), NAMES)
    with pytest.raises(ValueError, match="yielded no batches"):
        evaluate_model(_softmax_model(4), dataset.take(0).batch(2), list("abcd"))
    with pytest.raises(ValueError, match=r"\(images, labels\)` pairs"):
        evaluate_model(_softmax_model(4), dataset.map(lambda x, y: x).batch(2), list("abcd"))


def test_chance_accuracy() -> None:
    assert chance_accuracy(10) == pytest.approx(0.1)
    assert chance_accuracy(len(NAMES)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        chance_accuracy(0)
    with pytest.raises(TypeError, match="Received: num_classes=2.5"):
        chance_accuracy(2.5)  # type: ignore[arg-type]
