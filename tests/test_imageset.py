"""tlcourse.imageset: ImageSet on real CIFAR-10 images."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.imageset import ImageSet


def test_image_set_subset_and_len(folder_sets):
    _, test = folder_sets
    part = test.subset([3, 1, 4])
    assert len(part) == 3 and part.class_names == CIFAR10_CLASSES
    np.testing.assert_array_equal(part.images[0], test.images[3])
    np.testing.assert_array_equal(part.labels, test.labels[[3, 1, 4]])
    with pytest.raises(ValueError, match="Received: shape"):
        ImageSet(test.images[:2], test.labels[:3], CIFAR10_CLASSES)
