"""``ImageSet``: uint8 RGB images, their integer labels and the class names the labels index.

Every reader (:mod:`tlcourse.cifar10_python`, :mod:`tlcourse.image_folder`) returns these, and
:mod:`tlcourse.pipeline` turns their arrays into ``tf.data`` pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images with their integer labels and the class names the labels index.

    Attributes:
        images: uint8 array ``(N, H, W, 3)``, RGB, channels last.
        labels: int64 array ``(N,)``; ``labels[i]`` indexes ``class_names``.
        class_names: the class of each label id, in label order.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                "`images` must be a uint8 array of shape (N, H, W, 3). "
                f"Received: shape={self.images.shape}, dtype={self.images.dtype}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"`labels` must have shape ({len(self.images)},), one per image. "
                f"Received: shape={self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def digests(self) -> np.ndarray:
        """A 64-bit digest of each image's pixels (uint64, ``(N,)``): equal images, equal digests.

        What a check needs to tell whether two sets share images, without keeping the images.
        """
        import hashlib

        return np.array(
            [
                int.from_bytes(hashlib.blake2b(image.tobytes(), digest_size=8).digest(), "little")
                for image in self.images
            ],
            dtype=np.uint64,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        """Return the images at ``indices`` (integer indices or a boolean mask), as a copy."""
        indices = np.asarray(indices)
        return ImageSet(self.images[indices], self.labels[indices], self.class_names)
