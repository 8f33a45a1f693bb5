"""Predict with a saved photo classifier: the top classes of each image, with probabilities."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlcourse.errors import DataFormatError


@dataclass(frozen=True)
class Prediction:
    """The classes of one image, most probable first."""

    path: str
    top: tuple[tuple[str, float], ...]
    probabilities: np.ndarray

    def line(self) -> str:
        shown = ", ".join(f"{name} {p:.1%}" for name, p in self.top)
        return f"{self.path}: {shown}"


def read_pixels(path: str) -> np.ndarray:
    """The uint8 RGB pixels of the image file at ``path``, as the saved model takes them."""
    import tensorflow as tf

    from tlcourse.photos.pipeline import decode

    if not os.path.isfile(path):
        raise DataFormatError(
            f"{path} is not a file. Give image files (JPEG, PNG, GIF, BMP, WebP)."
        )
    try:
        return decode(tf.constant(path)).numpy()
    except tf.errors.InvalidArgumentError as err:
        reason = err.message.split("}} ")[-1].split(" [Op:")[0].strip()  # TF's own words only
        raise DataFormatError(
            f"{path} could not be decoded as an image ({reason}). Give JPEG, PNG, GIF, BMP or "
            "WebP files."
        ) from None


def predict(model, paths: Sequence[str | os.PathLike], *, top: int = 3) -> list[Prediction]:
    """The ``top`` classes of each image in ``paths``, by a model from ``tlcourse train``.

    Args:
        model: the saved model (a ``.keras`` path, or the loaded model).
        paths: image files of any size.
        top: how many classes to list per image. Defaults to 3.
    """
    from tlcourse.photos.model import class_names_of, load

    if not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive integer. Received: top={top!r}")
    if isinstance(model, str | os.PathLike):
        model = load(model)
    names = class_names_of(model)
    predictions = []
    for path in map(str, paths):
        probabilities = np.asarray(model(read_pixels(path)[np.newaxis], training=False))[0]
        order = np.argsort(-probabilities, kind="stable")[:top]
        predictions.append(
            Prediction(
                path, tuple((names[i], float(probabilities[i])) for i in order), probabilities
            )
        )
    return predictions
