"""What ``tlcourse info`` checks: are the data and the weights it finds usable, and for what.

Each check returns a :class:`Check`: ``ok`` is False only for something found but unusable (a
truncated weights file, a folder holding no dataset); nothing found at all is not a failure,
the message says what to set. Data is checked by its layout and class folders, without decoding
images: CIFAR-10 for ``tlcourse reproduce``, any image folder for ``tlcourse train``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from tlcourse.errors import DataNotFoundError, TLCourseError


class Check(NamedTuple):
    ok: bool
    message: str


def _cifar_class_problem(found: Path) -> str | None:
    """Why an image-folder CIFAR-10 found at ``found`` is not CIFAR-10's ten classes, or None."""
    from tlcourse.cifar10_python import CIFAR10_ARCHIVE, is_batches_folder
    from tlcourse.config import CIFAR10_CLASSES
    from tlcourse.image_folder import image_tree

    if (found.is_dir() and is_batches_folder(found)) or found.name == CIFAR10_ARCHIVE:
        return None
    splits = ("train", "test")
    with image_tree(found, splits=splits, class_names=(), limit=0) as tree:
        for split in splits:
            names = set(tree.dirs(split))
            if names != set(CIFAR10_CLASSES):
                return f"{tree.where(split)} has the classes {sorted(names)}, not CIFAR-10's"
    return None


def check_data(value: str | os.PathLike | None) -> Check:
    """Which dataset ``value`` (or ``$TLCOURSE_DATA``, or the cache) holds, and for what."""
    from tlcourse.config import DATA_ENV
    from tlcourse.data import locate_cifar10

    given = value if value is not None else os.environ.get(DATA_ENV) or None
    try:
        found = locate_cifar10(value, download=False)
    except DataNotFoundError as error:
        return Check(given is None, f"not found. {error}")
    except TLCourseError as error:
        cifar_error = str(error)
    else:
        problem = _cifar_class_problem(found)
        if problem is None:
            return Check(True, f"{found} (CIFAR-10: usable by `tlcourse reproduce` and `train`)")
        return _check_photo_folder(found, problem)
    return _check_photo_folder(Path(given), cifar_error)


def _check_photo_folder(path: Path, cifar_error: str) -> Check:
    """A folder that is not CIFAR-10 may still be photos to train on."""
    from tlcourse.photos.folders import open_folder

    try:
        folder = open_folder(path, check_images=False)
    except (TLCourseError, ValueError) as error:
        return Check(
            False,
            f"{path} is unusable: not CIFAR-10 ({cifar_error}) and not a folder of photos "
            f"({error})",
        )
    summary = "; ".join(folder.describe())
    return Check(
        True,
        f"{summary}. Usable by `tlcourse train`; not by `reproduce`, which needs CIFAR-10 "
        "(its ten classes under train/ and test/, or the official python layout).",
    )


def check_weights(value: str | os.PathLike | None) -> Check:
    """Whether the weights file ``value`` (or the one tlcourse would find) reads and validates."""
    from tlcourse.hub import sha256sum
    from tlcourse.weights import load_state_dict, locate_weights

    try:
        found = locate_weights(value, download=False)
    except DataNotFoundError as error:
        return Check(True, f"not found. {error}")
    except TLCourseError as error:
        return Check(False, f"unusable: {error}")
    try:
        tensors = load_state_dict(found)
    except (TLCourseError, OSError) as error:
        return Check(False, f"{found} is unusable: {error}")
    return Check(
        True, f"{found} (valid: SqueezeNet 1.1, {len(tensors)} tensors, sha256 {sha256sum(found)})"
    )
