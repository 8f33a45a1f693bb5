"""Assignment 2's corpus (freezing): realistic mistakes and valid alternative solutions."""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

CASES: tuple[Mistake, ...] = (
    Mistake(
        "random-backbone",
        "02-freezing",
        "build_model",
        "def build_model(image_size):\n"
        "    return transfer_model(classes=10, input_shape=(image_size, image_size, 3),\n"
        "                          weights=None)\n",
        {"test_build_model": 0},
        ("Known mistake: backbone without its ImageNet weights", "weights='imagenet'"),
        diagnoses=(checks.RANDOM_BACKBONE,),
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
        diagnoses=(checks.WRONG_FROZEN,),
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
        diagnoses=(checks.NOT_RECOMPILED,),
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
        diagnoses=(checks.TINY_MAPS,),
    ),
    # Under the grading budget 1e-2 sits at the edge (one run collapsed, another reached 19%);
    # 1e-1 kills every fire9 unit in epoch 1, every time.
)
