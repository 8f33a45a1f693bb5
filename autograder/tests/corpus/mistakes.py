"""Realistic wrong submissions: each is the solution notebook with one cell rewritten.

A :class:`Mistake` names the solution cell (its nbgrader ``grade_id``) and the student's version
of it, the points each test cell should then get, and text the feedback must show. The tests
build the notebooks with :func:`apply` and grade them through ``tlcourse grade``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Mistake:
    name: str
    assignment: str
    cell: str
    source: str
    #: Points expected per test cell that loses points (every other test cell: full marks).
    lost: dict[str, float]
    feedback: tuple[str, ...]
    #: Extra grade cells with an expected score that is not the cell's full marks or 0.
    scores: dict[str, float] = field(default_factory=dict)


MISTAKES: tuple[Mistake, ...] = (
    Mistake(
        "not-normalised",
        "01-preprocessing",
        "to_unit",
        "def to_unit(images):\n    return np.asarray(images).astype(np.float32)\n",
        {"test_to_unit": 0},
        ("Known mistake: data not normalised", "divide the uint8 pixels by 255"),
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
    ),
    Mistake(
        "labels-not-one-hot",
        "01-preprocessing",
        "encode_labels",
        "def encode_labels(labels):\n    return np.asarray(labels, np.float32)\n",
        {"test_encode_labels": 0},
        ("Known mistake: labels not one-hot", "tlcourse.preprocessing.one_hot"),
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
    ),
    Mistake(
        "random-backbone",
        "02-freezing",
        "build_model",
        "def build_model(image_size):\n"
        "    return transfer_model(classes=10, input_shape=(image_size, image_size, 3),\n"
        "                          weights=None)\n",
        {"test_build_model": 0},
        ("Known mistake: backbone without its ImageNet weights", "weights='imagenet'"),
    ),
    Mistake(
        "e2-trains-only-fire9",
        "02-freezing",
        "apply_freezing",
        "def apply_freezing(model, experiment):\n"
        "    blocks = {'E1': ('head',), 'E2': ('fire9', 'head')}.get(experiment)\n"
        "    for layer in model.layers:\n"
        "        layer.trainable = blocks is None or block_of(layer.name) in blocks\n"
        "    model.compile(optimizer=keras.optimizers.Adam(1e-4),\n"
        "                  loss='categorical_crossentropy', metrics=['accuracy'])\n"
        "    return model\n",
        {"test_freezing": 0},
        ("Known mistake: wrong layers frozen", "frozen but should train: fire8_squeeze"),
    ),
    Mistake(
        "not-recompiled",
        "02-freezing",
        "apply_freezing",
        "def apply_freezing(model, experiment):\n"
        "    blocks = trainable_blocks(experiment)\n"
        "    for layer in model.layers:\n"
        "        layer.trainable = block_of(layer.name) in blocks\n"
        "    return model\n",
        {"test_recompiled": 0},
        ("Known mistake: model not recompiled after changing `trainable`",),
    ),
    Mistake(
        "counts-layers-not-parameters",
        "02-freezing",
        "count_parameters",
        "def count_parameters(model):\n"
        "    return len(model.trainable_weights), len(model.non_trainable_weights)\n",
        {"test_count_parameters": 0},
        ("expected (trainable, frozen)",),
    ),
    Mistake(
        "images-at-32-px",
        "02-freezing",
        "image_size",
        "IMAGE_SIZE = 32\n",
        {"test_image_size": 0},
        ("Known mistake: 1x1 feature maps at 32 px", "at least 64 px"),
    ),
    # Under the grading budget 1e-2 sits at the edge (one run collapsed, another reached 19%);
    # 1e-1 kills every fire9 unit in epoch 1, every time.
    Mistake(
        "collapsed-at-1e-1",
        "03-finetuning",
        "config",
        "CONFIG = TrainConfig(experiment='E3', epochs=budget.epochs, learning_rate=1e-1,\n"
        "                     image_size=32, normalization='imagenet', seed=budget.seed)\n",
        {"test_train": 0, "validation_accuracy": 0},
        ("Known mistake: a collapsed run stuck at chance", "use 1e-4", "accuracy. Score: 0 of 6"),
    ),
)


def apply(mistake: Mistake, solution: Path, dest: Path) -> Path:
    """Write the solution notebook with ``mistake``'s cell to ``dest`` (a file path)."""
    nb = nbformat.read(solution, as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == mistake.cell]
    if len(cells) != 1:
        raise ValueError(f"{solution.name} has no single cell {mistake.cell!r}")
    cells[0].source = mistake.source
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest
