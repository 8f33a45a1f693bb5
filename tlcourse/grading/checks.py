"""Checks the exercises' test cells call: each failure names the mistake and how to fix it.

The notebooks' hidden tests are one-line calls into this module, so the checks' logic is
plain library code (tested, readable by anyone) and a failed check shows the student a message
such as ``Known mistake: labels not one-hot. ...`` rather than a hidden test's source. Every
check raises ``AssertionError`` (nbgrader marks the test cell failed) and returns ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tlcourse.architecture import feature_map_size
from tlcourse.config import IMAGENET_MEAN, IMAGENET_STD
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


def mistake(name: str, explanation: str) -> AssertionError:
    """An ``AssertionError`` whose message names a known mistake, then explains the fix."""
    return AssertionError(f"Known mistake: {name}. {explanation}")


def _array(value, what: str) -> np.ndarray:
    if value is None:
        raise AssertionError(f"{what} returned None: return the result (did you forget `return`?)")
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


# ------------------------------------------------------------------ assignment 1: preprocessing


def check_unit_scaled(result, images: np.ndarray) -> None:
    """``result`` must be ``images`` as float32 in [0, 1] (divided by 255)."""
    x = _array(result, "to_unit")
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
    x = _array(result, "standardize")
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
    y = _array(result, "encode_labels")
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
    result = split(labels, seed=0)
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise AssertionError("split must return two index arrays: (train_idx, val_idx).")
    train, val = (_array(r, "split").astype(np.int64) for r in result)
    if len(np.intersect1d(train, val)) or len(train) + len(val) != len(labels):
        raise AssertionError(
            "Train and validation indices must be disjoint and together cover every image once."
        )
    classes, counts = np.unique(labels, return_counts=True)
    val_counts = np.array([np.sum(labels[val] == c) for c in classes])
    if not np.all(np.abs(val_counts - val_fraction * counts) <= 1):
        raise mistake(
            NOT_STRATIFIED,
            f"Every class must put {val_fraction:.0%} of its images in validation; yours has "
            f"{val_counts.min()} to {val_counts.max()} a class. Pass `stratify=labels` to "
            "sklearn's train_test_split, or use tlcourse.pipeline.stratified_split.",
        )
    again = split(labels, seed=0)
    other = split(labels, seed=1)
    if not np.array_equal(np.sort(_array(again[1], "split")), np.sort(val)):
        raise AssertionError("The same seed must give the same split: pass the seed through.")
    if np.array_equal(np.sort(_array(other[1], "split")), np.sort(val)):
        raise AssertionError("Another seed must give another split: use the `seed` argument.")


def check_dataset(
    dataset, images: np.ndarray, labels: np.ndarray, *, image_size: int, batch_size: int
) -> None:
    """The first batch must be resized, ImageNet-normalised images with one-hot labels."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise AssertionError(f"Expected a tf.data.Dataset, got {type(dataset).__name__}.")
    batch = next(iter(dataset))
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise AssertionError("The dataset must yield (images, labels) pairs.")
    x, y = (np.asarray(b) for b in batch)
    n = min(batch_size, len(images))
    if x.shape != (n, image_size, image_size, 3):
        raise AssertionError(
            f"Expected image batches of shape ({n}, {image_size}, {image_size}, 3), got "
            f"{x.shape}: batch with batch_size and resize to image_size (tf.image.resize)."
        )
    if y.ndim != 2:
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


def check_transfer_model(model, image_size: int, weights_file=None) -> None:
    """A 10-class model on ``image_size`` inputs whose backbone holds the ImageNet weights."""
    import keras

    if not isinstance(model, keras.Model):
        raise AssertionError(f"Expected a keras.Model, got {type(model).__name__}.")
    if tuple(model.input_shape[1:]) != (image_size, image_size, 3):
        raise AssertionError(
            f"Expected inputs of shape (None, {image_size}, {image_size}, 3), got "
            f"{model.input_shape}: pass input_shape=(image_size, image_size, 3)."
        )
    if tuple(model.output_shape[1:]) != (10,):
        raise AssertionError(
            f"The new head must output 10 class probabilities, got {model.output_shape}: use "
            "transfer_model(classes=10, ...)."
        )
    from tlcourse.weights import load_state_dict

    kernel = np.asarray(load_state_dict(weights_file)["features.0.weight"]).transpose(2, 3, 1, 0)
    try:
        conv1 = model.get_layer("conv1").get_weights()[0]
    except ValueError:
        raise AssertionError("No layer named conv1: build the model with tlcourse.") from None
    if conv1.shape != kernel.shape or not np.allclose(conv1, kernel):
        raise mistake(
            RANDOM_BACKBONE,
            "conv1 does not hold the pretrained weights: build with weights='imagenet'.",
        )


def expected_trainable(model, experiment: str) -> dict[str, bool]:
    """Whether each layer with weights should train under ``experiment``."""
    from tlcourse.freeze import block_of, trainable_blocks

    blocks = set(trainable_blocks(experiment))
    return {layer.name: block_of(layer.name) in blocks for layer in model.layers if layer.weights}


def check_frozen(model, experiment: str) -> None:
    """Exactly the layers of ``experiment`` train (E1: head; E2: fire8, fire9, head; E3: all)."""
    expected = expected_trainable(model, experiment)
    wrong_frozen = [n for n, t in expected.items() if t and not model.get_layer(n).trainable]
    wrong_training = [n for n, t in expected.items() if not t and model.get_layer(n).trainable]
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
    """After ``apply_freezing(model, "E1")`` on a trained model, training must leave conv1 alone.

    Keras reads ``trainable`` when it builds the train step, so a model that has trained once
    keeps updating layers frozen afterwards until it is compiled again.
    """
    import keras

    from tlcourse.models import transfer_model

    model = transfer_model(classes=10, input_shape=(32, 32, 3), weights=weights_file or "imagenet")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
    y = one_hot(np.arange(16) % 10, 10)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    returned = apply_freezing(model, "E1")
    model = returned if returned is not None else model
    check_frozen(model, "E1")
    if not model.compiled:
        raise AssertionError("apply_freezing must leave the model compiled: call compile().")
    before = model.get_layer("conv1").get_weights()[0].copy()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    if not np.allclose(before, model.get_layer("conv1").get_weights()[0]):
        raise mistake(
            NOT_RECOMPILED,
            "conv1 is marked frozen but still changed in training: Keras reads `trainable` "
            "when it builds the train step, so compile the model again after changing it.",
        )


def check_param_counts(count_parameters: Callable, build: Callable) -> None:
    """``count_parameters(model)`` gives (trainable, frozen) of ``build()`` under E1, E2, E3."""
    from tlcourse.freeze import freeze

    for experiment in ("E1", "E2", "E3"):
        model = build()
        summary = freeze(model, experiment)
        expected = (summary.trainable_params, summary.frozen_params)
        result = count_parameters(model)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise AssertionError("count_parameters must return (trainable, frozen).")
        got = tuple(int(c) for c in result)
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
    if config.experiment != "E3":
        raise AssertionError(f"This run fine-tunes everything: experiment 'E3', got {config!r}.")
    if config.epochs != budget.epochs:
        raise AssertionError(
            f"Train for budget.epochs ({budget.epochs}) epochs, got {config.epochs}: the grader "
            "runs every notebook under the same budget."
        )
    if not 32 <= config.image_size <= 64:
        raise AssertionError(
            f"Use an image_size from 32 to 64 px under the grading budget, got {config.image_size}."
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
    m = _array(matrix, "confusion matrix")
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
