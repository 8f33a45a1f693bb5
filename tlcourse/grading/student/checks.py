"""Checks of the exercises: each failure names the mistake and how to fix it.

Every check comes in two layers. A *data* check (``check_batch``, ``check_trainable``, ...)
takes plain numbers and arrays and decides; it is what the grader runs, in its own process, on
what a graded kernel recorded (:mod:`tlcourse.grading.autotests`). The notebooks' visible test
cells call the *object* form (``check_dataset(dataset, ...)``, ``check_frozen(model, ...)``),
which records the object with :mod:`tlcourse.grading.kernel.record` and calls the data check,
so a student sees at home the message the grader would give. A failed check raises
``AssertionError`` with a message such as ``Known mistake: labels not one-hot. ...``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tlcourse.architecture import feature_map_size
from tlcourse.config import IMAGENET_MEAN, IMAGENET_STD
from tlcourse.grading.kernel import record
from tlcourse.preprocessing import normalize, one_hot

#: Short names of the mistakes the feedback recognises; messages start with "Known mistake: ".
NOT_NORMALISED = "data not normalised"
NOT_STANDARDISED = "data not standardised with the ImageNet mean and std"
NOT_ONE_HOT = "labels not one-hot"
NOT_STRATIFIED = "split not stratified"
WRONG_FROZEN = "wrong layers frozen"
NOT_RECOMPILED = "model not recompiled after changing `trainable`"
COLLAPSED = "a collapsed run stuck at chance"
TINY_MAPS = "1x1 feature maps at 32 px"
RANDOM_BACKBONE = "backbone without its ImageNet weights"

#: Every known mistake, in the order of the assignments (the rubric tables list them so).
KNOWN_MISTAKES = (
    NOT_NORMALISED,
    NOT_STANDARDISED,
    NOT_ONE_HOT,
    NOT_STRATIFIED,
    RANDOM_BACKBONE,
    WRONG_FROZEN,
    NOT_RECOMPILED,
    TINY_MAPS,
    COLLAPSED,
)


class Mistake(AssertionError):
    """A failed check that names a known mistake: the rubric of its test prices it by ``name``."""

    def __init__(self, name: str, explanation: str):
        super().__init__(f"Known mistake: {name}. {explanation}")
        self.name = name


def mistake(name: str, explanation: str) -> Mistake:
    """A :class:`Mistake` whose message names a known mistake, then explains the fix."""
    return Mistake(name, explanation)


# ------------------------------------------------------------------ assignment 1: preprocessing


def check_unit_scaled(result, images: np.ndarray) -> None:
    """``result`` must be ``images`` as float32 in [0, 1] (divided by 255)."""
    x = record.array(result, "to_unit")
    if x.shape != images.shape:
        raise AssertionError(f"Expected shape {images.shape} (one value per pixel), got {x.shape}.")
    if x.max() > 1.0 + 1e-6:
        raise mistake(
            NOT_NORMALISED,
            f"Values reach {x.max():.1f}, but the network expects pixels in [0, 1]: divide the "
            "uint8 pixels by 255 after converting them to float32.",
        )
    if x.dtype != np.float32:
        raise AssertionError(
            f"Expected dtype float32, got {x.dtype}: convert with `.astype(np.float32)` (float64 "
            "doubles the memory and TensorFlow layers compute in float32)."
        )
    if not np.allclose(x, images.astype(np.float32) / 255.0, atol=1e-6):
        raise AssertionError(
            "Values lie in [0, 1] but are not pixels / 255: scale every pixel by the same "
            "constant 255 (not by the image's or the batch's own maximum)."
        )


def check_standardized(result, images: np.ndarray) -> None:
    """``result`` must be ``normalize(images, "imagenet")``: /255, minus mean, over std."""
    x = record.array(result, "standardize")
    if x.shape != images.shape:
        raise AssertionError(f"Expected shape {images.shape}, got {x.shape}.")
    expected = normalize(images, "imagenet")
    if np.allclose(x, expected, atol=1e-4):
        if x.dtype != np.float32:
            raise AssertionError(f"Expected dtype float32, got {x.dtype}.")
        return
    unit = images.astype(np.float32) / 255.0
    if x.max() > 10:
        raise mistake(
            NOT_NORMALISED,
            f"Values reach {float(x.max()):.0f}: scale the pixels to [0, 1] (divide by 255) "
            "before you subtract the ImageNet mean and divide by its std.",
        )
    mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    hint = "subtract IMAGENET_MEAN, then divide by IMAGENET_STD, per channel (last axis)."
    if np.allclose(x, unit, atol=1e-4):
        hint = "you scaled to [0, 1] but did not standardise: " + hint
    elif np.allclose(x, unit - mean, atol=1e-4):
        hint = "you subtracted the mean but did not divide by the standard deviation."
    elif np.allclose(x, (unit - mean[::-1]) / std[::-1], atol=1e-4):
        hint = "the channels are in BGR order: the weights expect RGB, as CIFAR-10 stores them."
    raise mistake(NOT_STANDARDISED, f"The ImageNet weights expect standardised inputs: {hint}")


def check_one_hot(result, labels: np.ndarray, num_classes: int = 10) -> None:
    """``result`` must be the one-hot float32 rows of ``labels``."""
    y = record.array(result, "encode_labels")
    if y.ndim != 2 or y.shape != (len(labels), num_classes):
        raise mistake(
            NOT_ONE_HOT,
            f"Expected shape ({len(labels)}, {num_classes}), one row per image with a 1 in the "
            f"column of its class, got {y.shape}. categorical_crossentropy needs one-hot rows: "
            "use tlcourse.preprocessing.one_hot(labels, 10) or keras.utils.to_categorical.",
        )
    if not np.array_equal(y, one_hot(labels, num_classes)):
        raise mistake(
            NOT_ONE_HOT,
            "Each row must hold a single 1 in the column of the image's label (label 3 -> "
            "[0, 0, 0, 1, 0, ...]) and zeros elsewhere; yours differ.",
        )
    if y.dtype != np.float32:
        raise AssertionError(f"Expected dtype float32, got {y.dtype}.")


def check_split(split: Callable, labels: np.ndarray, val_fraction: float = 0.2) -> None:
    """``split(labels, seed)`` must return disjoint, stratified, seeded (train, val) indices."""
    first, again, other = (record.index_pair(split(labels, seed=s), "split") for s in (0, 0, 1))
    check_split_results(first, again, other, labels, val_fraction)


def check_split_results(first, again, other, labels: np.ndarray, val_fraction: float = 0.2):
    """Splits made with seeds 0, 0 and 1 (each ``(train, val)``) must be disjoint, stratified
    and seeded."""
    train, val = first
    if len(np.intersect1d(train, val)) or len(train) + len(val) != len(labels):
        raise AssertionError(
            "Train and validation indices must be disjoint and together cover every image once."
        )
    if len(np.union1d(train, val)) != len(labels) or min(train.min(), val.min()) < 0:
        raise AssertionError("Indices must be positions 0 .. len(labels) - 1, each used once.")
    classes, counts = np.unique(labels, return_counts=True)
    val_counts = np.array([np.sum(labels[val] == c) for c in classes])
    if not np.all(np.abs(val_counts - val_fraction * counts) <= 1):
        raise mistake(
            NOT_STRATIFIED,
            f"Every class must put {val_fraction:.0%} of its images in validation; yours has "
            f"{val_counts.min()} to {val_counts.max()} a class. Pass `stratify=labels` to "
            "sklearn's train_test_split, or use tlcourse.pipeline.stratified_split.",
        )
    if not np.array_equal(np.sort(again[1]), np.sort(val)):
        raise AssertionError("The same seed must give the same split: pass the seed through.")
    if np.array_equal(np.sort(other[1]), np.sort(val)):
        raise AssertionError("Another seed must give another split: use the `seed` argument.")


def check_dataset(
    dataset, images: np.ndarray, labels: np.ndarray, *, image_size: int, batch_size: int
) -> None:
    """The first batch must be resized, ImageNet-normalised images with one-hot labels."""
    x, y = record.first_batch(dataset)
    check_batch(x, y, images, labels, image_size=image_size, batch_size=batch_size)


def check_batch(
    x: np.ndarray,
    y: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    image_size: int,
    batch_size: int,
) -> None:
    """A first batch ``(x, y)`` of ``images``/``labels``: resized, normalised, one-hot."""
    import tensorflow as tf

    n = min(batch_size, len(images))
    if x.shape != (n, image_size, image_size, 3):
        raise AssertionError(
            f"Expected image batches of shape ({n}, {image_size}, {image_size}, 3), got "
            f"{x.shape}: batch with batch_size and resize to image_size (tf.image.resize)."
        )
    if y.ndim != 2 or len(y) != n:
        raise mistake(NOT_ONE_HOT, f"Label batches must be one-hot rows, got shape {y.shape}.")
    expected = tf.image.resize(images[:n].astype(np.float32), (image_size, image_size))
    expected = normalize(expected, "imagenet").numpy()
    if x.max() > 10:
        raise mistake(NOT_NORMALISED, "Image batches reach values above 10: normalise them.")
    if not np.allclose(x, expected, atol=2e-2):
        raise mistake(
            NOT_STANDARDISED,
            "Images must be resized (bilinear) and normalised with normalize(x, 'imagenet'), "
            "in the order given, without shuffling.",
        )
    if not np.array_equal(y.argmax(1), labels[:n]):
        raise AssertionError("Labels do not match their images: keep images and labels paired.")


# ------------------------------------------------------------------ assignment 2: freezing


def imagenet_conv1(weights_file=None) -> np.ndarray:
    """conv1's pretrained kernel in Keras layout (HWIO)."""
    from tlcourse.weights import load_state_dict

    return np.asarray(load_state_dict(weights_file)["features.0.weight"]).transpose(2, 3, 1, 0)


def check_transfer_model(model, image_size: int, weights_file=None) -> None:
    """A 10-class model on ``image_size`` inputs whose backbone holds the ImageNet weights."""
    check_model_summary(record.model_summary(model), image_size, imagenet_conv1(weights_file))


def check_model_summary(summary: Mapping, image_size: int, conv1: np.ndarray) -> None:
    """:func:`~tlcourse.grading.kernel.record.model_summary` of a model: shapes and conv1."""
    input_shape, output_shape = tuple(summary["input_shape"]), tuple(summary["output_shape"])
    shown = lambda shape: str(tuple(None if d == -1 else int(d) for d in shape))  # noqa: E731
    if input_shape[1:] != (image_size, image_size, 3):
        raise AssertionError(
            f"Expected inputs of shape (None, {image_size}, {image_size}, 3), got "
            f"{shown(input_shape)}: pass input_shape=(image_size, image_size, 3)."
        )
    if output_shape[1:] != (10,):
        raise AssertionError(
            f"The new head must output 10 class probabilities, got {shown(output_shape)}: use "
            "transfer_model(classes=10, ...)."
        )
    kernel = np.asarray(summary["conv1_kernel"])
    if kernel.size == 0:
        raise AssertionError("No layer named conv1: build the model with tlcourse.")
    if kernel.shape != conv1.shape or not np.allclose(kernel, conv1):
        raise mistake(
            RANDOM_BACKBONE,
            "conv1 does not hold the pretrained weights: build with weights='imagenet'.",
        )


def expected_trainable(layers: Sequence[str], experiment: str) -> dict[str, bool]:
    """Whether each of the named layers (those with weights) should train under ``experiment``."""
    from tlcourse.freeze import block_of, trainable_blocks

    blocks = set(trainable_blocks(experiment))
    return {str(name): block_of(str(name)) in blocks for name in layers}


def check_frozen(model, experiment: str) -> None:
    """Exactly the layers of ``experiment`` train (E1: head; E2: fire8, fire9, head; E3: all)."""
    flags = record.layer_flags(model)
    check_trainable(flags["layers"], flags["trainable"], experiment)


def check_trainable(layers: Sequence[str], trainable: Sequence[bool], experiment: str) -> None:
    """``trainable[i]`` says whether ``layers[i]`` trains: exactly those of ``experiment``."""
    if len(layers) != len(trainable) or not len(layers):
        raise AssertionError("The model has no layers with weights: build it with tlcourse.")
    expected = expected_trainable(layers, experiment)
    actual = dict(zip((str(n) for n in layers), (bool(t) for t in trainable), strict=True))
    wrong_frozen = [n for n, t in expected.items() if t and not actual[n]]
    wrong_training = [n for n, t in expected.items() if not t and actual[n]]
    if wrong_frozen or wrong_training:
        parts = []
        if wrong_frozen:
            parts.append(f"frozen but should train: {', '.join(wrong_frozen)}")
        if wrong_training:
            parts.append(f"training but should be frozen: {', '.join(wrong_training)}")
        raise mistake(
            WRONG_FROZEN,
            f"For {experiment} ({'; '.join(parts)}). E1 trains only the head (head_dense); "
            "E2 trains fire8, fire9 and the head; E3 trains every layer.",
        )


def check_recompiled(apply_freezing: Callable, weights_file=None) -> None:
    """After ``apply_freezing(model, "E1")`` on a trained model, training must leave conv1 alone."""
    check_recompile_evidence(record.recompile_evidence(apply_freezing, weights_file))


def check_recompile_evidence(evidence: Mapping) -> None:
    """:func:`~tlcourse.grading.kernel.record.recompile_evidence`: frozen, compiled, unchanged."""
    check_trainable(evidence["layers"], evidence["trainable"], "E1")
    if not bool(evidence["compiled"]):
        raise AssertionError("apply_freezing must leave the model compiled: call compile().")
    before, after = np.asarray(evidence["conv1_before"]), np.asarray(evidence["conv1_after"])
    if before.shape != after.shape or not np.allclose(before, after):
        raise mistake(
            NOT_RECOMPILED,
            "conv1 is marked frozen but still changed in training: Keras reads `trainable` "
            "when it builds the train step, so compile the model again after changing it.",
        )


def expected_counts(build: Callable) -> dict[str, tuple[int, int]]:
    """(trainable, frozen) parameters of ``build()`` under E1, E2 and E3."""
    from tlcourse.freeze import freeze

    found = {}
    for experiment in ("E1", "E2", "E3"):
        summary = freeze(build(), experiment)
        found[experiment] = (summary.trainable_params, summary.frozen_params)
    return found


def check_param_counts(count_parameters: Callable, build: Callable) -> None:
    """``count_parameters(model)`` gives (trainable, frozen) of ``build()`` under E1, E2, E3."""
    from tlcourse.freeze import freeze

    for experiment, expected in expected_counts(build).items():
        model = build()
        freeze(model, experiment)
        got = record.counts(count_parameters(model), "count_parameters")
        check_counts(got, expected, experiment)


def check_counts(got: Sequence[int], expected: Sequence[int], experiment: str) -> None:
    """A ``(trainable, frozen)`` pair against the true one."""
    got, expected = tuple(int(c) for c in got), tuple(int(c) for c in expected)
    if got != expected:
        raise AssertionError(
            f"{experiment}: expected (trainable, frozen) = {expected}, got {got}. Count "
            "the entries of model.trainable_weights and model.non_trainable_weights "
            "(math.prod of each weight's shape)."
        )


def check_image_size(image_size: int) -> None:
    """fire9 must see more than a 1x1 map (at least 3x3) at ``image_size``."""
    if not isinstance(image_size, int | np.integer) or image_size < 32:
        raise AssertionError(f"image_size must be an integer >= 32, got {image_size!r}.")
    side = feature_map_size(int(image_size))
    if side < 3:
        raise mistake(
            TINY_MAPS,
            f"At {image_size} px fire9's output is {side}x{side}: every spatial pattern the "
            "ImageNet features could use is gone, so a frozen backbone does poorly. Resize to "
            "at least 64 px (fire9 then sees 3x3).",
        )


# ------------------------------------------------------------------ assignment 3: fine-tuning


def check_config(config, budget) -> None:
    """The fine-tuning run trains every layer for the budget's epochs at 32 to 64 px."""
    check_config_values(record.config(config), budget)


def check_config_values(values: Mapping, budget) -> None:
    """A config's fields (:func:`~tlcourse.grading.kernel.record.config`) against the budget."""
    field = lambda name: values[name].item() if name in values else None  # noqa: E731
    if field("experiment") != "E3":
        raise AssertionError(
            f"This run fine-tunes everything: experiment 'E3', got {field('experiment')!r}."
        )
    if field("epochs") != budget.epochs:
        raise AssertionError(
            f"Train for budget.epochs ({budget.epochs}) epochs, got {field('epochs')}: the "
            "grader runs every notebook under the same budget."
        )
    size = field("image_size")
    if not isinstance(size, int) or not 32 <= size <= 64:
        raise AssertionError(
            f"Use an image_size from 32 to 64 px under the grading budget, got {size}."
        )


def check_not_collapsed(history: Mapping[str, Sequence[float]], num_classes: int = 10) -> None:
    """The run's last epoch must not sit at ln(C) loss with chance accuracy."""
    loss = list(history.get("loss", []))
    accuracy = list(history.get("accuracy", []))
    if not loss or not accuracy:
        raise AssertionError("The history has no 'loss' or 'accuracy': train the model first.")
    stuck = abs(loss[-1] - math.log(num_classes)) < 0.02 and accuracy[-1] < 1.5 / num_classes
    if stuck or not np.isfinite(loss[-1]):
        raise mistake(
            COLLAPSED,
            f"The training loss ends at {loss[-1]:.3f} (ln {num_classes} = "
            f"{math.log(num_classes):.3f}) with {accuracy[-1]:.1%} accuracy: the model predicts "
            "the same probabilities for every image. With every layer training, a learning "
            "rate of 1e-3 kills fire9's ReLUs; use 1e-4.",
        )


def check_confusion_matrix(matrix, accuracy: float, num_images: int, num_classes: int = 10) -> None:
    """A (C, C) count matrix over ``num_images`` whose diagonal gives ``accuracy``."""
    m = record.array(matrix, "confusion matrix")
    if m.shape != (num_classes, num_classes):
        raise AssertionError(f"Expected shape ({num_classes}, {num_classes}), got {m.shape}.")
    if int(m.sum()) != num_images:
        raise AssertionError(
            f"The matrix counts {int(m.sum())} images, the validation set has {num_images}: "
            "count every validation image once (rows: true class, columns: predicted)."
        )
    if not math.isclose(np.trace(m) / m.sum(), accuracy, abs_tol=max(1e-3, 1.5 / num_images)):
        raise AssertionError(
            f"The diagonal gives {np.trace(m) / m.sum():.3f} accuracy, the model's is "
            f"{accuracy:.3f}: rows must be true classes and columns predictions of this model."
        )
