"""Assignment 1's corpus (preprocessing): realistic mistakes and valid alternative solutions."""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

CASES: tuple[Mistake, ...] = (
    Mistake(
        "not-normalised",
        "01-preprocessing",
        "to_unit",
        "def to_unit(images):\n    return np.asarray(images).astype(np.float32)\n",
        {"test_to_unit": 0},
        ("Known mistake: data not normalised", "divide the uint8 pixels by 255"),
        diagnoses=(checks.NOT_NORMALISED,),
    ),
    Mistake(
        "mean-only",
        "01-preprocessing",
        "standardize",
        "def standardize(images):\n"
        "    unit = np.asarray(images, np.float32) / 255.0\n"
        "    return unit - np.asarray(IMAGENET_MEAN, np.float32)\n",
        {"test_standardize": 0},
        ("Known mistake: data not standardised", "did not divide by the standard deviation"),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
    Mistake(
        "labels-not-one-hot",
        "01-preprocessing",
        "encode_labels",
        "def encode_labels(labels):\n    return np.asarray(labels, np.float32)\n",
        {"test_encode_labels": 0},
        ("Known mistake: labels not one-hot", "tlcourse.preprocessing.one_hot"),
        diagnoses=(checks.NOT_ONE_HOT,),
    ),
    Mistake(
        "split-not-stratified",
        "01-preprocessing",
        "split",
        "def split(labels, seed):\n"
        "    order = np.random.default_rng(seed).permutation(len(labels))\n"
        "    cut = int(0.8 * len(labels))\n"
        "    return np.sort(order[:cut]), np.sort(order[cut:])\n",
        {"test_split": 0},
        ("Known mistake: split not stratified", "stratify=labels"),
        diagnoses=(checks.NOT_STRATIFIED,),
    ),
    Mistake(
        "pipeline-unit-scaling",
        "01-preprocessing",
        "make_pipeline",
        "def make_pipeline(images, labels, image_size, batch_size):\n"
        "    from tlcourse.pipeline import make_dataset\n"
        "    return make_dataset(images, labels, num_classes=10, batch_size=batch_size,\n"
        "                        normalization='unit', image_size=image_size)\n",
        {"test_make_pipeline": 0},
        ("Known mistake: data not standardised",),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
)
