"""Export a saved photo classifier as a TensorFlow SavedModel or a TFLite file, checked.

Keras writes both (``Model.export``: ``tf_saved_model`` and ``litert``). Each export is then run
on the same probe images as the ``.keras`` model and refused (deleted, with an error) if any
probability differs by more than :data:`TOLERANCE`. The class names go beside it in
``labels.txt`` (line ``i`` = output ``i``), since neither format keeps them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from tlcourse.errors import TLCourseError

FORMATS = ("savedmodel", "tflite")
#: Largest difference of a probability allowed between the .keras model and its export.
TOLERANCE = 1e-4


class ExportError(TLCourseError, RuntimeError):
    """An exported model does not compute what the ``.keras`` model computes."""


def probe_images(paths=None) -> list[np.ndarray]:
    """Images to compare on: the given files, else seeded random images of two sizes."""
    if paths:
        from tlcourse.photos.predict import read_pixels

        return [read_pixels(str(p)) for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((300, 400, 3), (256, 256, 3))]


def _run_savedmodel(path: Path, image: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept: its variables live as long as it does
    return loaded.serve(tf.constant(image[np.newaxis])).numpy()[0]


def _run_tflite(path: Path, image: np.ndarray) -> np.ndarray:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], (1, *image.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], image[np.newaxis])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def default_target(model_path: Path, format: str) -> Path:
    return model_path.with_name(
        f"{model_path.stem}-savedmodel" if format == "savedmodel" else f"{model_path.stem}.tflite"
    )


def export(
    model_path: str | os.PathLike,
    format: str = "savedmodel",
    *,
    out: str | os.PathLike | None = None,
    images=None,
) -> tuple[Path, float]:
    """Export ``model_path`` (a ``.keras`` from ``tlcourse train``); return (path, max difference).

    Args:
        model_path: the saved model.
        format: ``"savedmodel"`` (a folder) or ``"tflite"`` (one file).
        out: where to write it. Defaults to beside the model (``model-savedmodel/``,
            ``model.tflite``). An existing target is not overwritten.
        images: image files to compare the export on. Defaults to seeded random images.

    Raises:
        ExportError: the export's probabilities differ from the ``.keras`` model's.
    """
    from tlcourse.photos.model import class_names_of, load

    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    model_path = Path(model_path)
    model = load(model_path)
    target = Path(out) if out is not None else default_target(model_path, format)
    if target.exists():
        raise FileExistsError(
            f"{target} already exists; it is not overwritten. Give another --out, or delete it."
        )
    keras_format, run = (
        ("tf_saved_model", _run_savedmodel) if format == "savedmodel" else ("litert", _run_tflite)
    )
    model.export(str(target), format=keras_format, verbose=False)
    worst = 0.0
    for image in probe_images(images):
        expected = np.asarray(model(image[np.newaxis], training=False))[0]
        worst = max(worst, float(np.abs(run(target, image) - expected).max()))
    if worst > TOLERANCE:
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        raise ExportError(
            f"The {format} export of {model_path} gives probabilities up to {worst:.2g} away "
            f"from the .keras model's (tolerance {TOLERANCE:g}); it was deleted. Please report "
            "this with your TensorFlow version."
        )
    labels = target / "labels.txt" if target.is_dir() else target.with_suffix(".labels.txt")
    labels.write_text("".join(f"{name}\n" for name in class_names_of(model)))
    return target, worst
