"""A disk cache for what a frozen backbone computes, so reruns skip the forward passes.

With the backbone frozen (E1, E2), the features of an image depend only on the frozen
weights, the image and its preprocessing. :class:`FeatureStore` keys them by exactly that:
a sha256 of the frozen weights, of the images' bytes and of the settings that change the
output (image size, normalisation, where the model is cut). A rerun with another learning
rate, dropout or number of epochs then starts training at once; a change to any of the
inputs gives a new key, never a stale answer. Files are written whole (temporary file, then
rename), so an interrupted run leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def array_digest(*arrays: np.ndarray) -> str:
    """sha256 over the shapes, dtypes and bytes of ``arrays``."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


class FeatureStore:
    """Features computed once per (weights, images, settings), kept as ``.npy`` in ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        #: Images whose features were read from disk rather than computed, in this store's life.
        self.images_loaded = 0

    def path(self, key: dict) -> Path:
        """The file of the features computed under ``key`` (any JSON-serialisable dict)."""
        text = json.dumps(key, sort_keys=True)
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.npy"

    def load_or_compute(
        self,
        settings: dict,
        weights: list[np.ndarray],
        images: np.ndarray,
        compute: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """The stored features of ``images``, or ``compute(images)``, stored for next time."""
        key = {
            "settings": settings,
            "weights": array_digest(*weights),
            "images": array_digest(images),
        }
        return self.load_or_compute_keyed(key, len(images), lambda: compute(images))

    def load_or_compute_keyed(
        self, key: dict, count: int, compute: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The stored features under ``key`` (``count`` rows), or ``compute()``, then stored.

        ``key`` must name everything the features depend on (weights, images, settings). A file
        that cannot be read (cut short, or not an array) is computed again and replaced.
        """
        path = self.path(key)
        if path.exists():
            try:
                features = np.load(path, allow_pickle=False)
                if len(features) == count:
                    self.images_loaded += count
                    return features
            except (OSError, ValueError, EOFError):
                pass
        features = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, features, allow_pickle=False)
        os.replace(tmp, path)
        return features
