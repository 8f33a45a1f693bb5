"""Pixel normalisation and label encoding, in one place.

Two normalisations are offered:

* ``"unit"``: pixels divided by 255, as the study did;
* ``"imagenet"``: pixels divided by 255, then standardised per channel with the
  ImageNet mean and standard deviation, which is what the SqueezeNet 1.1 weights
  were trained with (Keras' ``imagenet_utils`` calls this ``mode="torch"``).

The functions accept NumPy arrays (and return NumPy arrays) or TensorFlow tensors
(and return tensors), so the same code serves notebooks and ``tf.data`` pipelines.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tlcourse.config import IMAGENET_MEAN, IMAGENET_STD

Normalization = Literal["unit", "imagenet"]
NORMALIZATIONS: tuple[str, ...] = ("unit", "imagenet")


def check_normalization(normalization: str) -> str:
    """Return ``normalization`` if known, else raise a ``ValueError`` naming the choices."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of {NORMALIZATIONS}: 'unit' divides by 255 (the study), "
            f"'imagenet' also standardises with the ImageNet mean/std (what the weights expect). "
            f"Received: normalization={normalization!r}"
        )
    return normalization


def normalize(images, normalization: Normalization = "imagenet"):
    """Turn uint8 RGB pixels (channels last) into float32 inputs for SqueezeNet.

    Args:
        images: array or tensor of shape ``(..., 3)`` with values in [0, 255].
        normalization: ``"unit"`` (divide by 255) or ``"imagenet"`` (then subtract the
            ImageNet mean and divide by its standard deviation, per channel).
    """
    check_normalization(normalization)
    if isinstance(images, np.ndarray):
        x = images.astype(np.float32) / np.float32(255.0)
        if normalization == "imagenet":
            x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
        return x
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 255.0
    if normalization == "imagenet":
        x = (x - tf.constant(IMAGENET_MEAN, tf.float32)) / tf.constant(IMAGENET_STD, tf.float32)
    return x


def check_labels(labels) -> np.ndarray:
    """Return ``labels`` as an array if it is 1-D integer class ids, else raise ``ValueError``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must be a 1-D array of integer class ids. "
            f"Received: shape={labels.shape}, dtype={labels.dtype}"
        )
    return labels


def one_hot(labels, num_classes: int) -> np.ndarray:
    """Encode integer labels ``0 .. num_classes-1`` as float32 one-hot rows."""
    labels = check_labels(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` must lie in [0, {num_classes - 1}] for num_classes={num_classes}. "
            f"Received: min={labels.min()}, max={labels.max()}"
        )
    return np.eye(num_classes, dtype=np.float32)[labels]
