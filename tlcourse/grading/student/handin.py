"""What the fine-tuning notebook hands to the grader: weights and a few settings, no code.

:func:`save_for_grading` writes ``model.weights.h5`` (weights only) and ``handin.json``
(experiment, image size, normalisation) beside the notebook. The grader reads them back with
:func:`read_handin`, rebuilds the architecture itself and never loads anything executable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tlcourse.preprocessing import NORMALIZATIONS

WEIGHTS_FILE = "model.weights.h5"
SETTINGS_FILE = "handin.json"
#: Every file the notebook writes for the grader; intake deletes submitted copies.
HANDIN_FILES = (WEIGHTS_FILE, SETTINGS_FILE)
IMAGE_SIZES = range(32, 65)


@dataclass(frozen=True)
class Handin:
    """The settings the grader needs to rebuild and evaluate the model."""

    experiment: str
    image_size: int
    normalization: str
    weights: Path


def save_for_grading(model, config, folder: str | os.PathLike = ".") -> Path:
    """Write ``model``'s weights and ``config``'s input settings into ``folder``."""
    folder = Path(folder)
    model.save_weights(folder / WEIGHTS_FILE)
    settings = {
        "experiment": config.experiment,
        "image_size": int(config.image_size),
        "normalization": config.normalization,
    }
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    return folder / WEIGHTS_FILE


def read_handin(folder: str | os.PathLike) -> Handin:
    """Read and validate what :func:`save_for_grading` wrote; ``ValueError`` says what is wrong."""
    folder = Path(folder)
    weights, settings = folder / WEIGHTS_FILE, folder / SETTINGS_FILE
    missing = [p.name for p in (weights, settings) if not p.is_file()]
    if missing:
        raise ValueError(
            f"{' and '.join(missing)} not found: the notebook did not reach its last cell, "
            "save_for_grading(model, CONFIG), in the graded run."
        )
    try:
        data = json.loads(settings.read_text())
        handin = Handin(
            experiment=str(data["experiment"]),
            image_size=int(data["image_size"]),
            normalization=str(data["normalization"]),
            weights=weights,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{SETTINGS_FILE} is not what save_for_grading writes: {error}") from None
    if handin.image_size not in IMAGE_SIZES or handin.normalization not in NORMALIZATIONS:
        raise ValueError(
            f"{SETTINGS_FILE} asks for image_size={handin.image_size} and normalization="
            f"{handin.normalization!r}; the grader accepts 32 to 64 px and {NORMALIZATIONS}."
        )
    return handin
