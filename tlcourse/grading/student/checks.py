"""Checks of the exercises: each failure names the mistake and how to fix it.

Every check comes in two layers. A *data* check (``check_batch``, ``check_trainable``, ...)
takes plain numbers and arrays and decides; it is what the grader runs, in its own process, on
what a graded kernel recorded (:mod:`tlcourse.grading.autotests`). The notebooks' visible test
cells call the *object* form (``check_dataset(dataset, ...)``, ``check_apply_freezing(fn, ...)``),
which records the object with :mod:`tlcourse.grading.kernel.record` and calls the data check,
so a student sees at home the message the grader would give. A failed check raises
``AssertionError`` with a message such as ``Known mistake: labels not one-hot. ...``.

A data check names a known mistake only when the answer matches it (the values it would give,
computed here), never by elimination: an answer that is wrong in some other way fails with a
plain message, and the rubric then takes the test's points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tlcourse.architecture import feature_map_size
from tlcourse.config import IMAGENET_MEAN, IMAGENET_STD
from tlcourse.grading.kernel import record
from tlcourse.preprocessing import one_hot

#: Short names of the mistakes the feedback recognises; messages start with "Known mistake: ".
NOT_NORMALISED = "data not normalised"
WRONG_DTYPE = "values right but not float32"
WRONG_CONSTANT = "pixels divided by the wrong constant"
SIGNED_RANGE = "pixels scaled to [-1, 1]"
OWN_RANGE = "pixels scaled by the data's own range"
NOT_STANDARDISED = "data not standardised with the ImageNet mean and std"
MEAN_STD_SWAPPED = "ImageNet mean and std swapped"
BGR_ORDER = "channels in BGR order"
NOT_ONE_HOT = "labels not one-hot"
WRONG_WIDTH = "one-hot rows without 10 columns"
LABELS_SHIFTED = "labels off by one"
OVERLAP = "train and validation overlap"
WRONG_FRACTION = "validation share not 20%"
NOT_STRATIFIED = "split not stratified"
SEED_IGNORED = "split ignores its seed"
SHUFFLED = "pipeline shuffled"
BATCH_SIZE_IGNORED = "batch_size ignored"
NOT_RESIZED = "images not resized"
RESIZE_METHOD = "resized without bilinear interpolation"
RANDOM_BACKBONE = "backbone without its ImageNet weights"
NO_SOFTMAX = "head without softmax"
RELU_BEFORE_SOFTMAX = "ReLU before softmax"
WRONG_FROZEN = "wrong layers frozen"
WRONG_FROZEN_SEVERAL = "wrong layers frozen in several experiments"
STAYS_FROZEN = "frozen layers never unfrozen"
MODEL_FROZEN = "model.trainable = False freezes every layer"
NOT_RECOMPILED = "model not recompiled after changing `trainable`"
WRONG_LOSS = "recompiled with the wrong loss"
COUNTS_SWAPPED = "(trainable, frozen) swapped"
COUNTED_TENSORS = "counted weight tensors, not parameters"
TINY_MAPS = "1x1 feature maps at 32 px"
NOT_SMALLEST = "not the smallest image size"
COLLAPSED = "a collapsed run stuck at chance"

#: Every known mistake, in the order of the assignments (the rubric tables list them so).
KNOWN_MISTAKES = (
    NOT_NORMALISED,
    WRONG_DTYPE,
    WRONG_CONSTANT,
    SIGNED_RANGE,
    OWN_RANGE,
    NOT_STANDARDISED,
    MEAN_STD_SWAPPED,
    BGR_ORDER,
    NOT_ONE_HOT,
    WRONG_WIDTH,
    LABELS_SHIFTED,
    OVERLAP,
    WRONG_FRACTION,
    NOT_STRATIFIED,
    SEED_IGNORED,
    SHUFFLED,
    BATCH_SIZE_IGNORED,
    NOT_RESIZED,
    RESIZE_METHOD,
    RANDOM_BACKBONE,
    NO_SOFTMAX,
    RELU_BEFORE_SOFTMAX,
    WRONG_FROZEN,
    WRONG_FROZEN_SEVERAL,
    STAYS_FROZEN,
    MODEL_FROZEN,
    NOT_RECOMPILED,
    WRONG_LOSS,
    COUNTS_SWAPPED,
    COUNTED_TENSORS,
    TINY_MAPS,
    NOT_SMALLEST,
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

_MEAN = np.asarray(IMAGENET_MEAN, np.float64)
_STD = np.asarray(IMAGENET_STD, np.float64)
#: Labels the probes and self-checks also encode: a batch without class 9 still needs 10 columns.
FIRST_NINE = np.arange(9)


def _close(values: np.ndarray, expected: np.ndarray, atol: float) -> bool:
    """Same shape and every finite value of ``expected`` within ``atol`` (NaN where it is NaN)."""
    if values.shape != expected.shape:
        return False
    known = np.isfinite(expected)
    return bool(known.any() and np.allclose(values[known], expected[known], rtol=0, atol=atol))


def _atol(dtype: np.dtype, base: float) -> float:
    """``base`` for 32- and 64-bit answers; half precision rounds to about 1e-3 of the value."""
    return max(base, 3e-3) if np.dtype(dtype).itemsize < 4 else base


def _check_float32(x: np.ndarray, what: str) -> None:
    if x.dtype != np.float32:
        raise mistake(
            WRONG_DTYPE,
            f"{what}'s values are right but its dtype is {x.dtype}: convert with "
            "`.astype(np.float32)` (Keras computes in float32; float64 doubles the memory).",
        )


def _fitted_divisor(u: np.ndarray, pixels: np.ndarray) -> float:
    """The constant ``c`` for which ``pixels / c`` is nearest ``u`` (least squares)."""
    with np.errstate(all="ignore"):
        c = float(np.sum(pixels * pixels)) / float(np.sum(pixels * u))
    return c if math.isfinite(c) else math.nan


def _own_range_scalings(pixels: np.ndarray) -> list[np.ndarray]:
    """Pixels scaled by each image's, or the whole batch's, own maximum or range."""
    axes = tuple(range(1, pixels.ndim))
    found = []
    with np.errstate(all="ignore"):
        for lowest, highest in (
            (0.0, pixels.max(axis=axes, keepdims=True)),
            (0.0, pixels.max()),
            (pixels.min(axis=axes, keepdims=True), pixels.max(axis=axes, keepdims=True)),
            (pixels.min(), pixels.max()),
        ):
            found.append((pixels - lowest) / (highest - lowest))
    return found


def _diagnose_scale(u: np.ndarray, pixels: np.ndarray, atol: float, fix: str) -> None:
    """Raise the known mistake that ``u``, which should be ``pixels / 255``, shows, if any."""
    if not np.isfinite(u).all():
        dark = pixels.reshape(len(pixels), -1).max(1) == 0
        broken = ~np.isfinite(u.reshape(len(u), -1)).all(1)
        if dark[broken].all():
            raise mistake(
                OWN_RANGE,
                "An all-black image came out as NaN: it was divided by its own maximum (0). "
                "Divide every pixel by the same constant, 255.",
            )
        return
    if u.max() > 10:
        raise mistake(NOT_NORMALISED, f"Values reach {u.max():.0f}: {fix}")
    divisor = _fitted_divisor(u, pixels)
    if divisor > 2 and abs(divisor - 255) > 0.5 and _close(u, pixels / divisor, atol):
        raise mistake(
            WRONG_CONSTANT,
            f"The pixels were divided by {divisor:.4g}, not by 255, so white (255) becomes "
            f"{255 / divisor:.4f} instead of 1.0: divide by 255, the largest uint8 value.",
        )
    if _close(u, pixels / 127.5 - 1, atol):
        raise mistake(
            SIGNED_RANGE,
            "Values run from -1 to 1 (pixels / 127.5 - 1, Inception's convention), but "
            "SqueezeNet's ImageNet weights expect pixels / 255, in [0, 1].",
        )
    if any(_close(u, scaled, atol) for scaled in _own_range_scalings(pixels)):
        raise mistake(
            OWN_RANGE,
            "The pixels were scaled by the images' own maximum (or range), so the same pixel "
            "value means something else in each image or batch: divide by the constant 255.",
        )


def check_unit_scaled(result, images: np.ndarray) -> None:
    """``result`` must be ``images`` as float32 in [0, 1] (divided by 255)."""
    x = record.array(result, "to_unit")
    if x.shape != images.shape:
        raise AssertionError(f"Expected shape {images.shape} (one value per pixel), got {x.shape}.")
    pixels, values = images.astype(np.float64), x.astype(np.float64)
    atol = _atol(x.dtype, 1e-5)
    if _close(values, pixels / 255, atol):
        _check_float32(x, "to_unit")
        return
    _diagnose_scale(
        values,
        pixels,
        atol,
        "the network expects pixels in [0, 1]: divide the uint8 pixels by 255 after converting "
        "them to float32.",
    )
    raise AssertionError(
        "Values are not pixels / 255: scale every pixel by the same constant 255 (0 -> 0.0, "
        "255 -> 1.0), nothing else."
    )


def _standardised(unit: np.ndarray) -> np.ndarray:
    return (unit - _MEAN) / _STD


def _diagnose_standardised(x: np.ndarray, pixels: np.ndarray, atol: float) -> None:
    """Raise the known mistake that ``x``, which should be ImageNet-standardised, shows."""
    if np.isfinite(x).all() and x.max() > 10:
        raise mistake(
            NOT_NORMALISED,
            f"Values reach {x.max():.0f}: scale the pixels to [0, 1] (divide by 255) before you "
            "subtract the ImageNet mean and divide by its std.",
        )
    unit = pixels / 255
    axes = tuple(range(1, unit.ndim))
    with np.errstate(all="ignore"):
        own = [
            (unit - unit.mean()) / unit.std(),
            (unit - unit.mean(axis=axes, keepdims=True)) / unit.std(axis=axes, keepdims=True),
            (unit - unit.mean(axis=axes[:-1], keepdims=True))
            / unit.std(axis=axes[:-1], keepdims=True),
            (unit - unit.mean(axis=(0, *axes[:-1]))) / unit.std(axis=(0, *axes[:-1])),
        ]
    candidates = [
        (
            unit,
            NOT_STANDARDISED,
            "you scaled to [0, 1] but did not standardise: subtract "
            "IMAGENET_MEAN, then divide by IMAGENET_STD, per channel (last axis).",
        ),
        (
            unit - _MEAN,
            NOT_STANDARDISED,
            "you subtracted IMAGENET_MEAN but did not divide by "
            "IMAGENET_STD (the standard deviation).",
        ),
        (
            unit / _STD,
            NOT_STANDARDISED,
            "you divided by IMAGENET_STD but did not subtract IMAGENET_MEAN first.",
        ),
        *(
            (
                found,
                NOT_STANDARDISED,
                "you standardised with the data's own mean and std: use "
                "IMAGENET_MEAN and IMAGENET_STD, the statistics the weights were trained with.",
            )
            for found in own
        ),
        (
            (unit - _STD) / _MEAN,
            MEAN_STD_SWAPPED,
            "you subtracted IMAGENET_STD and divided by "
            "IMAGENET_MEAN: subtract the mean, then divide by the std.",
        ),
        (
            _standardised(unit[..., ::-1]),
            BGR_ORDER,
            "the channels were reversed to BGR: keep "
            "CIFAR-10's RGB order, which the weights expect.",
        ),
        (
            (unit - _MEAN[::-1]) / _STD[::-1],
            BGR_ORDER,
            "the mean and std were applied in BGR "
            "order: use IMAGENET_MEAN and IMAGENET_STD as given (RGB, like CIFAR-10).",
        ),
    ]
    for expected, name, hint in candidates:
        if _close(x, expected, atol):
            raise mistake(name, f"The ImageNet weights expect standardised inputs: {hint}")
    _diagnose_scale(
        x * _STD + _MEAN,
        pixels,
        atol * float(_STD.max()),
        "scale the pixels to [0, 1] (divide by 255) before you standardise.",
    )


def check_standardized(result, images: np.ndarray) -> None:
    """``result`` must be ``normalize(images, "imagenet")``: /255, minus mean, over std."""
    x = record.array(result, "standardize")
    if x.shape != images.shape:
        raise AssertionError(f"Expected shape {images.shape}, got {x.shape}.")
    pixels, values = images.astype(np.float64), x.astype(np.float64)
    atol = _atol(x.dtype, 1e-4)
    if _close(values, _standardised(pixels / 255), atol):
        _check_float32(x, "standardize")
        return
    _diagnose_standardised(values, pixels, atol)
    raise AssertionError(
        "Values are not (pixels / 255 - IMAGENET_MEAN) / IMAGENET_STD, per channel (last axis)."
    )


def _span(labels: np.ndarray) -> str:
    return f"{int(labels.min())}..{int(labels.max())}" if labels.size else "(none)"


def check_one_hot(result, labels: np.ndarray, num_classes: int = 10) -> None:
    """``result`` must be the one-hot rows of ``labels`` (any number type: values decide)."""
    y = record.array(result, "encode_labels")
    n = len(labels)
    if y.ndim < 2 or (y.ndim == 2 and y.shape[1] == 1 and num_classes > 1):
        raise mistake(
            NOT_ONE_HOT,
            f"Expected shape ({n}, {num_classes}), one row per image with a 1 in the column of "
            f"its class, got {y.shape}. categorical_crossentropy needs one-hot rows: use "
            f"tlcourse.preprocessing.one_hot(labels, {num_classes}) or "
            f"keras.utils.to_categorical(labels, {num_classes}).",
        )
    if y.ndim != 2 or len(y) != n:
        raise AssertionError(
            f"Expected shape ({n}, {num_classes}), one row per label, got {y.shape}."
        )
    if y.shape[1] != num_classes:
        raise mistake(
            WRONG_WIDTH,
            f"Rows have {y.shape[1]} columns for labels {_span(labels)}: CIFAR-10's labels run "
            f"0..9, so every row needs {num_classes} columns whatever labels a batch holds "
            f"(np.eye({num_classes})[labels], not labels.max() + 1 or 9 columns).",
        )
    values = y.astype(np.float64)
    if np.array_equal(values, one_hot(labels, num_classes)):
        return
    single = np.all((values == 0) | (values == 1), axis=1) & (values.sum(axis=1) == 1)
    if not single.all():
        raise mistake(
            NOT_ONE_HOT,
            "Each row must hold a single 1 in the column of the image's label (label 3 -> "
            "[0, 0, 0, 1, 0, ...]) and zeros elsewhere; yours differ.",
        )
    columns = values.argmax(axis=1)
    for shift in (1, -1):
        if np.array_equal(columns, (labels + shift) % num_classes):
            raise mistake(
                LABELS_SHIFTED,
                f"Label 3 has its 1 in column {3 + shift}: every label is shifted by {shift:+d}. "
                "CIFAR-10's labels already run 0..9: index with the label itself "
                f"(np.eye({num_classes})[labels]).",
            )
    raise AssertionError(
        "Some rows hold their 1 in another column than the image's label (label 3 -> "
        "[0, 0, 0, 1, 0, ...])."
    )


def encodings(encode: Callable, samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``encode`` on each sample of labels; what an encoding raised is kept as text."""
    found = {}
    for key, labels in samples.items():
        try:
            found[key] = record.array(encode(np.array(labels)), "encode_labels")
        except AssertionError:
            raise
        except Exception as error:  # noqa: BLE001 - the student's code may raise anything
            found[f"{key}.error"] = np.asarray(f"{type(error).__name__}: {error}"[:300])
    return found


def check_encodings(found: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]) -> None:
    """What :func:`encodings` recorded: each sample one-hot; an error gets a hint."""
    errors = []
    for key, labels in samples.items():
        if f"{key}.error" in found:
            errors.append((labels, str(found[f"{key}.error"])))
        else:
            check_one_hot(found[key], labels)
    if errors:
        labels, error = errors[0]
        raise AssertionError(
            f"encode_labels raised {error} on labels {_span(labels)}. CIFAR-10's labels run "
            "0..9: each row needs 10 columns, one per class (np.eye(10)[labels])."
        )


def check_encode_labels(encode: Callable, labels: np.ndarray) -> None:
    """``encode(labels)`` and ``encode`` of labels 0..8 must be one-hot rows of 10 columns."""
    samples = {"labels": np.asarray(labels), "first_nine": FIRST_NINE}
    check_encodings(encodings(encode, samples), samples)


def check_split(split: Callable, labels: np.ndarray, val_fraction: float = 0.2) -> None:
    """``split(labels, seed)`` must return disjoint, stratified, seeded (train, val) indices."""
    first, again, other = (record.index_pair(split(labels, seed=s), "split") for s in (0, 0, 1))
    check_split_results(first, again, other, labels, val_fraction)


def check_split_results(first, again, other, labels: np.ndarray, val_fraction: float = 0.2):
    """Splits made with seeds 0, 0 and 1 (each ``(train, val)``) must be disjoint, stratified
    and seeded."""
    train, val = first
    n = len(labels)
    shared = np.intersect1d(train, val)
    if len(shared):
        raise mistake(
            OVERLAP,
            f"{len(shared)} images are in both train and validation, so validation measures "
            "images the model trained on: split the indices once and keep the parts apart.",
        )
    outside = (
        len(train)
        and len(val)
        and (min(train.min(), val.min()) < 0 or max(train.max(), val.max()) >= n)
    )
    if outside or len(np.union1d(train, val)) != n or len(train) + len(val) != n:
        raise AssertionError(
            "Train and validation indices must be positions 0 .. len(labels) - 1, disjoint, "
            "together covering every image once."
        )
    classes, counts = np.unique(labels, return_counts=True)
    if abs(len(val) - val_fraction * n) > max(1, len(classes)):
        swapped = abs(len(val) - (1 - val_fraction) * n) <= max(1, len(classes))
        hint = (
            "train and validation are swapped: test_size=0.2 is the validation share, and "
            "split returns (train_idx, val_idx) in that order"
            if swapped
            else f"pass test_size={val_fraction}"
        )
        raise mistake(
            WRONG_FRACTION,
            f"Validation holds {len(val) / n:.0%} of the images, not {val_fraction:.0%}: {hint}.",
        )
    val_counts = np.array([np.sum(labels[val] == c) for c in classes])
    if not np.all(np.abs(val_counts - val_fraction * counts) <= 1):
        raise mistake(
            NOT_STRATIFIED,
            f"Every class must put {val_fraction:.0%} of its images in validation; yours has "
            f"{val_counts.min()} to {val_counts.max()} a class. Pass `stratify=labels` to "
            "sklearn's train_test_split, or use tlcourse.pipeline.stratified_split.",
        )
    if not np.array_equal(np.sort(again[1]), np.sort(val)):
        raise mistake(
            SEED_IGNORED,
            "The same seed gave two different splits, so no run can be repeated: pass the seed "
            "on (random_state=seed).",
        )
    if np.array_equal(np.sort(other[1]), np.sort(val)):
        raise mistake(
            SEED_IGNORED,
            "Seeds 0 and 1 gave the same split: pass the `seed` argument on "
            "(random_state=seed), not a constant.",
        )


def check_dataset(
    dataset, images: np.ndarray, labels: np.ndarray, *, image_size: int, batch_size: int
) -> None:
    """The first batch must be resized, ImageNet-normalised images with one-hot labels."""
    x, y = record.first_batch(dataset)
    check_batch(x, y, images, labels, image_size=image_size, batch_size=batch_size)


def _resized(images: np.ndarray, image_size: int, method: str = "bilinear") -> np.ndarray:
    """``images`` (uint8) resized as float pixels in [0, 255] (float64)."""
    if images.shape[1:3] == (image_size, image_size):
        return images.astype(np.float64)
    import tensorflow as tf

    resized = tf.image.resize(images.astype(np.float32), (image_size, image_size), method=method)
    return resized.numpy().astype(np.float64)


def _batch_order(x: np.ndarray, expected: np.ndarray, atol: float) -> np.ndarray | None:
    """For each image of ``x``, the index of the expected image it is; ``None`` if one is none."""
    order = []
    for image in x:
        distance = np.abs(expected - image).reshape(len(expected), -1).max(axis=1)
        if not distance.min() <= atol:
            return None
        order.append(int(distance.argmin()))
    return np.asarray(order)


def _check_label_batch(y: np.ndarray, labels: np.ndarray) -> None:
    values = y.astype(np.float64)
    if np.array_equal(values, one_hot(labels, 10)):
        return
    single = np.all((values == 0) | (values == 1), axis=1) & (values.sum(axis=1) == 1)
    if single.all():
        for shift in (1, -1):
            if np.array_equal(values.argmax(axis=1), (labels + shift) % 10):
                raise mistake(
                    LABELS_SHIFTED,
                    f"Label batches have each 1 shifted by {shift:+d} column: CIFAR-10's labels "
                    "already run 0..9, one-hot encode them as they are.",
                )
        raise AssertionError("Labels do not match their images: keep images and labels paired.")
    raise mistake(
        NOT_ONE_HOT, "Label rows must hold a single 1 in the column of the image's class."
    )


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
    n = min(batch_size, len(images))
    shape = (n, image_size, image_size, 3)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise AssertionError(
            f"Expected image batches of shape {shape}, got {x.shape}: batch with batch_size "
            "and resize to image_size (tf.image.resize)."
        )
    if len(x) != n:
        raise mistake(
            BATCH_SIZE_IGNORED,
            f"The first batch holds {len(x)} images where batch_size={batch_size} asks for "
            f"{n}: batch with .batch(batch_size), the argument, not a number of your own.",
        )
    if x.shape[1:3] != (image_size, image_size):
        if x.shape[1:3] == images.shape[1:3]:
            raise mistake(
                NOT_RESIZED,
                f"Images stay {images.shape[1]}x{images.shape[2]} where image_size asks for "
                f"{image_size}x{image_size}: resize with tf.image.resize(x, (image_size, "
                "image_size)).",
            )
        raise AssertionError(f"Expected image batches of shape {shape}, got {x.shape}.")
    if y.ndim < 2 or (y.ndim == 2 and y.shape[1] == 1):
        raise mistake(
            NOT_ONE_HOT,
            f"Label batches must be one-hot rows of 10 columns, got shape {y.shape}: encode the "
            "labels as in 1.3.",
        )
    if y.ndim != 2 or len(y) != n:
        raise AssertionError(f"Expected label batches of shape ({n}, 10), got {y.shape}.")
    if y.shape[1] != 10:
        raise mistake(
            WRONG_WIDTH,
            f"Label rows have {y.shape[1]} columns: CIFAR-10 has 10 classes (0..9), so 10.",
        )
    atol = 2e-2
    pixels = _resized(images, image_size)
    expected = _standardised(pixels / 255)
    values = x.astype(np.float64)
    divisor = _fitted_divisor(values[:n] * _STD + _MEAN, pixels[:n])
    if not (_close(values, expected[:n], atol) and abs(divisor - 255) <= 0.5):
        order = _batch_order(values, expected, atol)
        if order is not None:
            if not np.array_equal(y.argmax(axis=1), labels[order]):
                raise AssertionError("Labels do not match their images: keep them paired.")
            raise mistake(
                SHUFFLED,
                f"The first batch holds images {order[:4].tolist()} ... instead of 0, 1, 2, ...: "
                "the pipeline must keep the given order (no .shuffle()).",
            )
        for method in ("nearest", "bicubic", "area"):
            other = _standardised(_resized(images[:n], image_size, method) / 255)
            if _close(values, other, atol):
                raise mistake(
                    RESIZE_METHOD,
                    f"The images were resized with {method!r} interpolation: use bilinear, "
                    "tf.image.resize's default.",
                )
        _diagnose_standardised(values, pixels[:n], atol)
        raise AssertionError(
            "Images must be resized (bilinear, tf.image.resize) to image_size and then "
            "standardised as in 1.2, in the order given."
        )
    _check_float32(x, "The pipeline's image batch")
    _check_label_batch(y, labels[:n])


# ------------------------------------------------------------------ assignment 2: freezing


def imagenet_conv1(weights_file=None) -> np.ndarray:
    """conv1's pretrained kernel in Keras layout (HWIO)."""
    from tlcourse.weights import load_state_dict

    return np.asarray(load_state_dict(weights_file)["features.0.weight"]).transpose(2, 3, 1, 0)


def check_transfer_model(model, image_size: int, weights_file=None) -> None:
    """A 10-class model on ``image_size`` inputs whose backbone holds the ImageNet weights."""
    check_model_summary(record.model_summary(model), image_size, imagenet_conv1(weights_file))


def check_model_summary(summary: Mapping, image_size: int, conv1: np.ndarray) -> None:
    """:func:`~tlcourse.grading.kernel.record.model_summary` of a model: shapes, conv1, head."""
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
    check_head(summary)


def _relu_logits(kinds: Sequence[str], activations: Sequence[str], weighted: Sequence[bool]):
    """Whether the softmax's inputs come out of a ReLU, from the head's layers (output first)."""
    chain = iter(zip(kinds, activations, weighted, strict=True))
    for _, activation, has_weights in chain:
        if activation == "softmax":
            if has_weights:  # Dense(..., activation="softmax"): its logits are linear
                return False
            break
        if activation or has_weights:
            return False
    else:
        return False
    for _, activation, has_weights in chain:  # the layer that makes the logits
        if activation or has_weights:
            return activation == "relu"
    return False


def check_head(summary: Mapping) -> None:
    """The model's outputs are probabilities, and no ReLU comes before its softmax."""
    outputs = np.asarray(summary["outputs"], np.float64)
    if outputs.ndim != 2 or not len(outputs):
        raise AssertionError("The model gave no outputs on a batch of images.")
    sums = outputs.sum(axis=-1)
    if not (
        np.isfinite(outputs).all() and outputs.min() >= -1e-6 and np.allclose(sums, 1, atol=1e-3)
    ):
        raise mistake(
            NO_SOFTMAX,
            f"The outputs are not class probabilities (rows sum to {sums.min():.3g} .. "
            f"{sums.max():.3g}, the smallest is {outputs.min():.3g}): categorical_crossentropy "
            "expects them, so end the head with Dense(10, activation='softmax').",
        )
    if _relu_logits(summary["head_kinds"], summary["head_activations"], summary["head_weighted"]):
        raise mistake(
            RELU_BEFORE_SOFTMAX,
            "The softmax's inputs come out of a ReLU: once every logit is pushed below zero the "
            "outputs are uniform and the gradient zero, so the run never recovers. Keep the last "
            "Dense (or Conv2D) before the softmax linear.",
        )


def expected_trainable(layers: Sequence[str], experiment: str) -> dict[str, bool]:
    """Whether each of the named layers (those with weights) should train under ``experiment``."""
    from tlcourse.freeze import block_of, trainable_blocks

    blocks = set(trainable_blocks(experiment))
    return {str(name): block_of(str(name)) in blocks for name in layers}


def _wrong_layers(layers, trainable, experiment: str) -> tuple[list[str], list[str]]:
    """(should train but frozen, should be frozen but training) of ``experiment``."""
    if len(layers) != len(trainable) or not len(layers):
        raise AssertionError("The model has no layers with weights: build it with tlcourse.")
    expected = expected_trainable(layers, experiment)
    actual = dict(zip((str(n) for n in layers), (bool(t) for t in trainable), strict=True))
    wrong_frozen = [n for n, t in expected.items() if t and not actual[n]]
    wrong_training = [n for n, t in expected.items() if not t and actual[n]]
    return wrong_frozen, wrong_training


def _which_wrong(experiment: str, wrong_frozen: list[str], wrong_training: list[str]) -> str:
    shown = lambda names: ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")  # noqa: E731
    parts = []
    if wrong_frozen:
        parts.append(f"frozen but should train: {shown(wrong_frozen)}")
    if wrong_training:
        parts.append(f"training but should be frozen: {shown(wrong_training)}")
    return f"{experiment} ({'; '.join(parts)})"


_RULE = "E1 trains only the head (head_dense); E2 trains fire8, fire9 and the head; E3 every layer."


def check_trainable(layers: Sequence[str], trainable: Sequence[bool], experiment: str) -> None:
    """``trainable[i]`` says whether ``layers[i]`` trains: exactly those of ``experiment``."""
    check_freezing({experiment: (experiment, {"layers": layers, "trainable": trainable})})


def check_apply_freezing(apply_freezing: Callable, build: Callable) -> None:
    """``apply_freezing`` on new models (E1, E2, E3) and on frozen ones (E3 then E2, E1 then
    E3): exactly the layers of each experiment train."""
    check_freezing_flags(record.freezing_flags(apply_freezing, build))


def check_freezing_flags(found: Mapping[str, np.ndarray]) -> None:
    """:func:`~tlcourse.grading.kernel.record.freezing_flags`' data, checked as a whole."""
    configs = {}
    for name, experiments in record.FREEZINGS:
        start = f"{name}."
        flags = {k[len(start) :]: v for k, v in found.items() if k.startswith(start)}
        configs[name] = (experiments[-1], flags)
    check_freezing(configs)


def check_freezing(configs: Mapping[str, tuple[str, Mapping]]) -> None:
    """``configs``: name -> (experiment, :func:`~tlcourse.grading.kernel.record.layer_flags`).

    A config named after its experiment froze a new model; any other (``"E1-then-E3"``)
    froze a model another experiment had frozen before. What trains is what the optimizer
    would update (``model.trainable_weights``), not the layers' own flags.
    """
    wrong = {}
    for name, (experiment, flags) in configs.items():
        found = _wrong_layers(flags["layers"], flags["trainable"], experiment)
        if any(found):
            wrong[name] = (experiment, flags, found)
    if not wrong:
        return
    # model.trainable = False, then layers unfrozen: on a new model their flags are right
    if all(not bool(flags.get("model_trainable", True)) for _, flags, _ in wrong.values()) and all(
        not any(_wrong_layers(flags["layers"], flags.get("flagged", flags["trainable"]), e))
        for name, (e, flags) in configs.items()
        if name == e
    ):
        raise mistake(
            MODEL_FROZEN,
            "The layers' own flags are right on a new model, but the model's `trainable` is "
            "False, and in Keras 3 nothing then trains whatever its layers say: set "
            "layer.trainable per layer only (or model.trainable = True first).",
        )
    fresh = {experiment for name, (experiment, _, _) in wrong.items() if name == experiment}
    if not fresh:
        name, (experiment, _, found) = next(iter(wrong.items()))
        raise mistake(
            STAYS_FROZEN,
            f"After {name.replace('-then-', ' then ')}: {_which_wrong(experiment, *found)}. Set "
            "every layer's trainable, True as well as False, so that a model frozen before can "
            "train again.",
        )
    parts = [_which_wrong(e, *found) for n, (e, _, found) in wrong.items() if n == e]
    if len(fresh) == 1:
        raise mistake(WRONG_FROZEN, f"For {parts[0]}. {_RULE}")
    raise mistake(WRONG_FROZEN_SEVERAL, f"For {'; '.join(parts)}. {_RULE}")


def check_recompiled(apply_freezing: Callable, weights_file=None) -> None:
    """After ``apply_freezing`` on a trained model, training must leave the frozen layers alone."""
    check_recompile_evidence(record.recompile_evidence(apply_freezing, weights_file))


def _categorical(loss: str, from_logits: bool) -> bool:
    return loss.lower().replace("_", "") == "categoricalcrossentropy" and not from_logits


def check_recompile_evidence(evidence: Mapping) -> None:
    """:func:`~tlcourse.grading.kernel.record.recompile_evidence`: compiled, frozen unchanged.

    Which layers the student's ``apply_freezing`` froze is the freezing test's business: this
    one asks only that the layers it froze stay unchanged when the model trains again (or,
    where it froze none, that it compiled the model again).
    """
    if not bool(evidence["compiled"]):
        raise AssertionError("apply_freezing must leave the model compiled: call compile().")
    loss, from_logits = str(evidence["loss"]), bool(evidence["loss_from_logits"])
    wrong_loss = mistake(
        WRONG_LOSS,
        f"The model was compiled with loss {loss}{' (from_logits=True)' if from_logits else ''}: "
        "the labels are one-hot rows and the head ends in a softmax, so compile with "
        "loss='categorical_crossentropy'.",
    )
    if "fit_error" in evidence:
        if not _categorical(loss, from_logits):
            raise wrong_loss
        raise AssertionError(
            f"Training the model apply_freezing returned failed: {evidence['fit_error']}"
        )
    frozen = ~np.asarray(evidence["trainable"], bool)
    changed = np.asarray(evidence["changed"], np.float64)
    moved = [str(n) for n, f, c in zip(evidence["layers"], frozen, changed, strict=True) if f and c]
    if moved:
        raise mistake(
            NOT_RECOMPILED,
            f"{', '.join(moved[:3])}{' ...' if len(moved) > 3 else ''} frozen but still changed "
            "in training: Keras reads `trainable` when it builds the train step, so compile the "
            "model again after changing it.",
        )
    if not frozen.any() and not bool(evidence["recompiled"]):
        raise mistake(
            NOT_RECOMPILED,
            "apply_freezing does not compile the model again: Keras reads `trainable` when it "
            "builds the train step, so call model.compile(...) after changing it.",
        )
    if not _categorical(loss, from_logits):
        raise wrong_loss


def expected_counts(build: Callable) -> dict[str, tuple[int, int]]:
    """(trainable, frozen) parameters of ``build()`` under E1, E2 and E3."""
    from tlcourse.freeze import freeze

    found = {}
    for experiment in ("E1", "E2", "E3"):
        summary = freeze(build(), experiment)
        found[experiment] = (summary.trainable_params, summary.frozen_params)
    return found


def miscounts(build: Callable) -> dict[str, tuple[int, int]]:
    """(trainable, frozen) weight tensors of ``build()`` under E1, E2 and E3 (a known mistake)."""
    from tlcourse.freeze import freeze

    found = {}
    for experiment in ("E1", "E2", "E3"):
        model = build()
        freeze(model, experiment)
        found[experiment] = (len(model.trainable_weights), len(model.non_trainable_weights))
    return found


def check_param_counts(count_parameters: Callable, build: Callable) -> None:
    """``count_parameters(model)`` gives (trainable, frozen) of ``build()`` under E1, E2, E3."""
    from tlcourse.freeze import freeze

    tensors = miscounts(build)
    for experiment, expected in expected_counts(build).items():
        model = build()
        freeze(model, experiment)
        got = record.counts(count_parameters(model), "count_parameters")
        check_counts(got, expected, experiment, tensors[experiment])


def check_counts(
    got: Sequence[int],
    expected: Sequence[int],
    experiment: str,
    tensors: Sequence[int] | None = None,
) -> None:
    """A ``(trainable, frozen)`` pair against the true one (``tensors``: the weight tensors)."""
    got, expected = tuple(int(c) for c in got), tuple(int(c) for c in expected)
    if got == expected:
        return
    if got == expected[::-1]:
        raise mistake(
            COUNTS_SWAPPED,
            f"{experiment}: expected (trainable, frozen) = {expected}, got {got}: return the "
            "trainable count first.",
        )
    if tensors is not None and got in (tuple(int(c) for c in tensors), tuple(tensors)[::-1]):
        raise mistake(
            COUNTED_TENSORS,
            f"{experiment}: expected (trainable, frozen) = {expected}, got {got}, which counts "
            "weight tensors (a kernel and a bias a layer), not parameters: add up "
            "math.prod(w.shape) over model.trainable_weights and model.non_trainable_weights.",
        )
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


def check_smallest_image_size(image_size: int, multiple: int = 32) -> None:
    """``image_size``: the smallest multiple of ``multiple`` that gives fire9 a 3x3 map."""
    check_image_size(image_size)
    if image_size % multiple:
        raise AssertionError(f"IMAGE_SIZE must be a multiple of {multiple}, got {image_size}.")
    smallest = next(s for s in range(multiple, 10_000, multiple) if feature_map_size(s) >= 3)
    if image_size != smallest:
        raise mistake(
            NOT_SMALLEST,
            f"At {image_size} px fire9 sees {feature_map_size(image_size)}x"
            f"{feature_map_size(image_size)}, but {smallest} px already gives 3x3 and costs "
            f"{(image_size / smallest) ** 2:.1f} times less compute: the question asks for "
            "the smallest.",
        )


# ------------------------------------------------------------------ assignment 3: fine-tuning

NOT_FINE_TUNED = "backbone not fine-tuned (E3 trains every layer)"
RATE_TOO_HIGH = "learning rate too high to fine-tune every layer"
CONFIG_NOT_USED = "trained with settings other than CONFIG"
TRANSPOSED = "confusion matrix transposed"
MATRIX_OF_FRACTIONS = "confusion matrix of fractions, not counts"
MATRIX_NOT_VALIDATION = "confusion matrix not of the validation images"
MATRIX_NOT_THIS_MODEL = "confusion matrix not of this model's predictions"
TRAINED_ON_VALIDATION = "validation images used in training"
#: Assignment 3's known mistakes (with NOT_STANDARDISED and COLLAPSED of the ones above).
FINETUNING_MISTAKES = (
    NOT_FINE_TUNED,
    RATE_TOO_HIGH,
    CONFIG_NOT_USED,
    TRANSPOSED,
    MATRIX_OF_FRACTIONS,
    MATRIX_NOT_VALIDATION,
    MATRIX_NOT_THIS_MODEL,
    TRAINED_ON_VALIDATION,
)
#: Highest learning rate at which E3 under Adam does not risk its ReLUs (1e-3 collapses it).
MAX_FINETUNE_RATE = 3e-4
#: Settings of a config that decide what trained (compared between CONFIG and the run's own).
RUN_SETTINGS = ("experiment", "epochs", "learning_rate", "image_size", "normalization")


def check_config(config, budget) -> None:
    """The fine-tuning run: every layer, the budget's epochs, 32 to 64 px, ImageNet inputs,
    a learning rate that keeps the ReLUs alive."""
    check_config_values(record.config(config), budget)


def _field(values: Mapping, name: str):
    return values[name].item() if name in values else None


def check_config_values(values: Mapping, budget) -> None:
    """A config's fields (:func:`~tlcourse.grading.kernel.record.config`) against the budget."""
    field = lambda name: _field(values, name)  # noqa: E731
    if field("experiment") != "E3":
        raise mistake(
            NOT_FINE_TUNED,
            f"CONFIG trains {field('experiment')!r}: this run fine-tunes every layer, "
            "experiment='E3' (E1 trains only the head, E2 the head, fire8 and fire9).",
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
    if field("normalization") != "imagenet":
        raise mistake(
            NOT_STANDARDISED,
            f"CONFIG's normalization is {field('normalization')!r}: the ImageNet weights "
            "expect inputs standardised with the ImageNet mean and std, normalization='imagenet'.",
        )
    rate = field("learning_rate")
    if not isinstance(rate, int | float) or not 0 < rate <= MAX_FINETUNE_RATE:
        raise mistake(
            RATE_TOO_HIGH,
            f"learning_rate={rate!r}: with every layer training, Adam at 1e-3 or more kills "
            f"fire9's ReLUs and the run collapses to chance; use 1e-4 (at most "
            f"{MAX_FINETUNE_RATE:g}).",
        )


def check_run_settings(config: Mapping, trained: Mapping) -> None:
    """The run that trained (``fit``'s own config) used the settings of ``CONFIG``."""
    differ = [
        f"{name} {_field(trained, name)!r} (CONFIG: {_field(config, name)!r})"
        for name in RUN_SETTINGS
        if name in trained and _field(trained, name) != _field(config, name)
    ]
    if differ:
        raise mistake(
            CONFIG_NOT_USED,
            f"The model was trained with {', '.join(differ)}: train with fit(model, "
            "train_set, val_set, CONFIG), so that the hand-in describes the run.",
        )


def check_not_collapsed(
    history: Mapping[str, Sequence[float]], num_classes: int = 10, config: Mapping | None = None
) -> None:
    """The run's last epoch must not sit at ln(C) loss with chance accuracy.

    ``config`` (the run's fields) lets the message name the likely cause: a learning rate too
    high, or inputs the weights were not trained on.
    """
    loss = list(history.get("loss", []))
    accuracy = list(history.get("accuracy", []))
    if not loss or not accuracy:
        raise AssertionError("The history has no 'loss' or 'accuracy': train the model first.")
    stuck = abs(loss[-1] - math.log(num_classes)) < 0.02 and accuracy[-1] < 1.5 / num_classes
    if not (stuck or not np.isfinite(loss[-1])):
        return
    config = config or {}
    rate, normalization = _field(config, "learning_rate"), _field(config, "normalization")
    if isinstance(rate, int | float) and rate > MAX_FINETUNE_RATE:
        cause = f"at learning_rate={rate:g} Adam kills fire9's ReLUs: use 1e-4."
    elif normalization is not None and normalization != "imagenet":
        cause = (
            f"the inputs ({normalization!r}) are not what the ImageNet weights expect: use "
            "normalization='imagenet'."
        )
    else:
        cause = "try a smaller learning rate (1e-4) and check the inputs' normalisation."
    raise mistake(
        COLLAPSED,
        f"The training loss ends at {loss[-1]:.3f} (ln {num_classes} = "
        f"{math.log(num_classes):.3f}) with {accuracy[-1]:.1%} accuracy: the model predicts "
        f"the same probabilities for every image; {cause}",
    )


def check_confusion_matrix(
    matrix, accuracy: float, labels: Sequence[int], num_classes: int = 10
) -> None:
    """A (C, C) count matrix of the validation images (true ``labels``): rows true classes,
    columns predictions, its diagonal giving the model's ``accuracy``."""
    m = record.array(matrix, "confusion matrix")
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
    num_images = int(counts.sum())
    if m.shape != (num_classes, num_classes):
        raise AssertionError(f"Expected shape ({num_classes}, {num_classes}), got {m.shape}.")
    if not np.all(np.isfinite(m)) or m.min() < 0:
        raise AssertionError("A confusion matrix counts images: no negative or missing values.")
    total = float(m.sum())
    if total <= num_classes + 1e-6 and not np.allclose(m, np.round(m)):
        raise mistake(
            MATRIX_OF_FRACTIONS,
            "Its entries are fractions: count images (sklearn's confusion_matrix without "
            "`normalize`, or evaluate_model's confusion_matrix); normalise only for a plot.",
        )
    if not math.isclose(total, num_images):
        raise mistake(
            MATRIX_NOT_VALIDATION,
            f"It counts {total:.0f} images, the validation set has {num_images}: predict "
            "val_set, every image once (not the training set, not a single batch).",
        )
    rows, columns = m.sum(axis=1), m.sum(axis=0)
    if not np.allclose(rows, counts) and np.allclose(columns, counts):
        raise mistake(
            TRANSPOSED,
            "Its columns hold each true class's images: rows must be true classes and columns "
            "predictions, confusion_matrix(y_true, y_pred) in that order.",
        )
    if not np.allclose(rows, counts):
        raise mistake(
            MATRIX_NOT_VALIDATION,
            f"Row i must count the {counts.tolist()} validation images of class i; yours count "
            f"{rows.astype(int).tolist()}: pair each image's true label with its prediction.",
        )
    diagonal = float(np.trace(m)) / total
    if not math.isclose(diagonal, accuracy, abs_tol=max(1e-3, 1.5 / num_images)):
        raise mistake(
            MATRIX_NOT_THIS_MODEL,
            f"Its diagonal gives {diagonal:.1%} accuracy, the trained model's last validation "
            f"accuracy is {accuracy:.1%}: predict with the trained `model`, through a pipeline "
            "with CONFIG's normalisation and image size.",
        )


def check_not_trained_on_validation(trained_on: np.ndarray, validation: np.ndarray) -> None:
    """No image of the validation set (digests ``validation``) among those that trained."""
    shared = int(np.isin(np.asarray(validation), np.asarray(trained_on)).sum())
    if shared:
        raise mistake(
            TRAINED_ON_VALIDATION,
            f"{shared} of the {len(validation)} validation images were among the images the "
            "model trained on: fit on train_set only; validation images are for choosing and "
            "checking, never for training.",
        )
