"""Constants shared by the whole package: names, environment variables, the study.

One source of truth: the study's protocol and numbers live here and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

#: CIFAR-10 class names in the official label order (label i = CIFAR10_CLASSES[i]).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

#: Environment variable naming a folder that holds CIFAR-10 (see ``tlcourse.data``).
DATA_ENV = "TLCOURSE_DATA"
#: Environment variable naming a SqueezeNet 1.1 weights file (``.npz`` or ``.pth``).
WEIGHTS_ENV = "TLCOURSE_WEIGHTS"
#: Environment variable overriding the download cache folder.
CACHE_ENV = "TLCOURSE_CACHE"

#: Per-channel statistics the ImageNet weights were trained with (RGB order).
#: imagenet_utils calls this ``mode="torch"``: scale to [0, 1], then standardise.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: The study's experiments and the freezing strategy of each (see ``tlcourse.freeze``).
EXPERIMENTS: dict[str, str] = {"E1": "head", "E2": "fire8", "E3": "all"}

#: The study the course reproduces (validation and test accuracy, in percent).
STUDY_RESULTS: dict[str, dict[str, float | None]] = {
    "E1": {"val_accuracy": 38.32, "test_accuracy": None},
    "E2": {"val_accuracy": 50.15, "test_accuracy": None},
    "E3": {"val_accuracy": 74.29, "test_accuracy": 74.77},
}


def cache_dir() -> Path:
    """Folder for downloads and converted files: ``$TLCOURSE_CACHE`` or ``~/.keras/tlcourse``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(keras_home) / "tlcourse"


def resolve_path_variables() -> None:
    """Make relative ``$TLCOURSE_DATA``, ``$TLCOURSE_WEIGHTS``, ``$TLCOURSE_CACHE`` absolute.

    A relative path means the folder the command was typed in; processes that tlcourse starts
    elsewhere (graded kernels, the book's pages) must read the same files.
    """
    for name in (DATA_ENV, WEIGHTS_ENV, CACHE_ENV):
        value = os.environ.get(name)
        if value and not os.path.isabs(os.path.expanduser(value)):
            os.environ[name] = str(Path(value).expanduser().resolve())
