"""Assignment 2's corpus (freezing): realistic mistakes and valid alternative solutions.

Points: build_model 2, freezing 2, recompiled 1, count_parameters 2, image_size 1. The rubric
(``tlcourse.grading.autotests.freezing``) was decided before these cases were graded.
"""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

A = "02-freezing"
_COMPILE = (
    "    model.compile(optimizer=keras.optimizers.Adam(1e-4),\n"
    "                  loss='categorical_crossentropy', metrics=['accuracy'])\n"
    "    return model\n"
)


def _head(head: str) -> str:
    """build_model as a functional head on tlcourse's ImageNet backbone (``x``: its features)."""
    return (
        "def build_model(image_size):\n"
        "    from tlcourse.models import squeezenet1_1\n"
        "    backbone = squeezenet1_1(include_top=False, weights='imagenet',\n"
        "                             input_shape=(image_size, image_size, 3))\n"
        "    x = keras.layers.GlobalAveragePooling2D()(backbone.output)\n"
        f"{head}"
        "    return keras.Model(backbone.input, outputs)\n"
    )


def _freezing(body: str, compile_: str = _COMPILE) -> str:
    return "def apply_freezing(model, experiment):\n" + body + compile_


CASES: tuple[Mistake, ...] = (
    # ---------------------------------------------------------------- build_model
    Mistake(
        "random-backbone",
        A,
        "build_model",
        "def build_model(image_size):\n"
        "    return transfer_model(classes=10, input_shape=(image_size, image_size, 3),\n"
        "                          weights=None)\n",
        {"test_build_model": 0},
        ("Known mistake: backbone without its ImageNet weights", "weights='imagenet'"),
        diagnoses=(checks.RANDOM_BACKBONE,),
    ),
    Mistake(
        "head-relu-before-softmax",
        A,
        "build_model",
        _head(
            "    x = keras.layers.Dense(10, activation='relu')(x)\n"
            "    outputs = keras.layers.Activation('softmax')(x)\n"
        ),
        {"test_build_model": 1},
        ("Known mistake: ReLU before softmax", "linear"),
        diagnoses=(checks.RELU_BEFORE_SOFTMAX,),
    ),
    Mistake(
        "head-without-softmax",
        A,
        "build_model",
        _head("    outputs = keras.layers.Dense(10)(x)\n"),
        {"test_build_model": 1},
        ("Known mistake: head without softmax", "activation='softmax'"),
        diagnoses=(checks.NO_SOFTMAX,),
    ),
    Mistake(
        "build-ignores-image-size",
        A,
        "build_model",
        "def build_model(image_size):\n    return transfer_model(classes=10, weights='imagenet')\n",
        {"test_build_model": 0},
        ("Expected inputs of shape (None, 64, 64, 3)",),
    ),
    # ---------------------------------------------------------------- apply_freezing
    Mistake(  # one experiment frozen wrong now costs 1 of 2 (it cost 2 before)
        "e2-trains-only-fire9",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = {'E1': ('head',), 'E2': ('fire9', 'head')}.get(experiment)\n"
            "    for layer in model.layers:\n"
            "        layer.trainable = blocks is None or block_of(layer.name) in blocks\n"
        ),
        {"test_freezing": 1},
        ("Known mistake: wrong layers frozen", "frozen but should train: fire8_squeeze"),
        diagnoses=(checks.WRONG_FROZEN,),
    ),
    Mistake(
        "e3-freezes-conv1",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks('fire2' if experiment == 'E3' else experiment)\n"
            "    for layer in model.layers:\n"
            "        layer.trainable = block_of(layer.name) in blocks\n"
        ),
        {"test_freezing": 1},
        ("Known mistake: wrong layers frozen", "E3 (frozen but should train: conv1)"),
        diagnoses=(checks.WRONG_FROZEN,),
    ),
    Mistake(
        "freeze-by-index-off-by-one",
        A,
        "apply_freezing",
        _freezing(
            "    names = [layer.name for layer in model.layers]\n"
            "    first = {'E1': names.index('head_pool'), 'E2': names.index('fire8_squeeze') + 1,\n"
            "             'E3': 0}[experiment]\n"
            "    for i, layer in enumerate(model.layers):\n"
            "        layer.trainable = i >= first\n"
        ),
        {"test_freezing": 1},
        ("Known mistake: wrong layers frozen", "frozen but should train: fire8_squeeze"),
        diagnoses=(checks.WRONG_FROZEN,),
    ),
    Mistake(
        "never-unfreezes",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks(experiment)\n"
            "    for layer in model.layers:\n"
            "        if block_of(layer.name) not in blocks:\n"
            "            layer.trainable = False\n"
        ),
        {"test_freezing": 1},
        ("Known mistake: frozen layers never unfrozen", "After E1 then E3"),
        diagnoses=(checks.STAYS_FROZEN,),
    ),
    Mistake(
        "model-trainable-false-then-unfreeze",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks(experiment)\n"
            "    model.trainable = False\n"
            "    for layer in model.layers:\n"
            "        if block_of(layer.name) in blocks:\n"
            "            layer.trainable = True\n"
        ),
        {"test_freezing": 1},
        ("Known mistake: model.trainable = False freezes every layer",),
        diagnoses=(checks.MODEL_FROZEN,),
    ),
    Mistake(  # the recompile is judged on the layers it froze, whichever: full marks there
        "freezing-inverted",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks(experiment)\n"
            "    for layer in model.layers:\n"
            "        layer.trainable = block_of(layer.name) not in blocks\n"
        ),
        {"test_freezing": 0},
        ("Known mistake: wrong layers frozen in several experiments",),
        diagnoses=(checks.WRONG_FROZEN_SEVERAL,),
    ),
    Mistake(
        "not-recompiled",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks(experiment)\n"
            "    for layer in model.layers:\n"
            "        layer.trainable = block_of(layer.name) in blocks\n",
            "    return model\n",
        ),
        {"test_recompiled": 0},
        ("Known mistake: model not recompiled after changing `trainable`",),
        diagnoses=(checks.NOT_RECOMPILED,),
    ),
    Mistake(
        "recompiled-with-mse",
        A,
        "apply_freezing",
        _freezing(
            "    blocks = trainable_blocks(experiment)\n"
            "    for layer in model.layers:\n"
            "        layer.trainable = block_of(layer.name) in blocks\n",
            "    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss='mse',\n"
            "                  metrics=['accuracy'])\n"
            "    return model\n",
        ),
        {"test_recompiled": 0.5},
        ("Known mistake: recompiled with the wrong loss", "loss='categorical_crossentropy'"),
        diagnoses=(checks.WRONG_LOSS,),
    ),
    # ---------------------------------------------------------------- count_parameters
    Mistake(  # now named (the rubric prices it at all 2 points, as before)
        "counts-layers-not-parameters",
        A,
        "count_parameters",
        "def count_parameters(model):\n"
        "    return len(model.trainable_weights), len(model.non_trainable_weights)\n",
        {"test_count_parameters": 0},
        ("expected (trainable, frozen)", "Known mistake: counted weight tensors"),
        diagnoses=(checks.COUNTED_TENSORS,),
    ),
    Mistake(
        "counts-swapped",
        A,
        "count_parameters",
        "def count_parameters(model):\n"
        "    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)\n"
        "    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)\n"
        "    return frozen, trainable\n",
        {"test_count_parameters": 1},
        ("Known mistake: (trainable, frozen) swapped",),
        diagnoses=(checks.COUNTS_SWAPPED,),
    ),
    # ---------------------------------------------------------------- IMAGE_SIZE
    Mistake(
        "images-at-32-px",
        A,
        "image_size",
        "IMAGE_SIZE = 32\n",
        {"test_image_size": 0},
        ("Known mistake: 1x1 feature maps at 32 px", "at least 64 px"),
        diagnoses=(checks.TINY_MAPS,),
    ),
    Mistake(
        "images-at-96-px",
        A,
        "image_size",
        "IMAGE_SIZE = 96\n",
        {"test_image_size": 0.5},
        ("Known mistake: not the smallest image size", "64 px already gives 3x3"),
        diagnoses=(checks.NOT_SMALLEST,),
    ),
    Mistake(
        "images-at-224-px",
        A,
        "image_size",
        "IMAGE_SIZE = 224\n",
        {"test_image_size": 0.5},
        ("Known mistake: not the smallest image size",),
        diagnoses=(checks.NOT_SMALLEST,),
    ),
    # ---------------------------------------------------------------- valid alternatives
    Mistake(
        "valid-functional-head",
        A,
        "build_model",
        _head(
            "    x = keras.layers.Dropout(0.5)(x)\n"
            "    outputs = keras.layers.Dense(10, activation='softmax')(x)\n"
        ),
        {},
        (),
    ),
    Mistake(  # the backbone nested as one layer: the student prints fire9's map through it
        "valid-sequential-head",
        A,
        "build_model",
        "def build_model(image_size):\n"
        "    from tlcourse.models import squeezenet1_1\n"
        "    backbone = squeezenet1_1(include_top=False, weights='imagenet',\n"
        "                             input_shape=(image_size, image_size, 3))\n"
        "    return keras.Sequential([\n"
        "        backbone,\n"
        "        keras.layers.GlobalAveragePooling2D(),\n"
        "        keras.layers.Dense(10, activation='softmax'),\n"
        "    ])\n",
        {},
        (),
        also={
            "image_size": "IMAGE_SIZE = 64\n"
            "backbone = build_model(IMAGE_SIZE).layers[0]\n"
            "print(IMAGE_SIZE, backbone.get_layer('fire9_concat').output.shape)\n",
        },
    ),
    Mistake(
        "valid-freezing-by-name-with-loss-object",
        A,
        "apply_freezing",
        "def apply_freezing(model, experiment):\n"
        "    training = {'E1': ('head',), 'E2': ('fire8', 'fire9', 'head')}.get(experiment)\n"
        "    model.trainable = True\n"
        "    for layer in model.layers:\n"
        "        head = layer.name.startswith('head') or layer.name == 'predictions'\n"
        "        block = 'head' if head else layer.name.split('_')[0]\n"
        "        layer.trainable = training is None or block in training\n"
        "    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4),\n"
        "                  loss=keras.losses.CategoricalCrossentropy(),\n"
        "                  metrics=['accuracy'])\n"
        "    return model\n",
        {},
        (),
    ),
    Mistake(
        "valid-count-with-a-loop",
        A,
        "count_parameters",
        "def count_parameters(model):\n"
        "    trainable = frozen = 0\n"
        "    for layer in model.layers:\n"
        "        if layer.trainable:\n"
        "            trainable += layer.count_params()\n"
        "        else:\n"
        "            frozen += layer.count_params()\n"
        "    return trainable, frozen\n",
        {},
        (),
    ),
    Mistake(
        "valid-image-size-searched",
        A,
        "image_size",
        "sizes = range(32, 257, 32)\n"
        "IMAGE_SIZE = next(s for s in sizes\n"
        "                  if build_model(s).get_layer('fire9_concat').output.shape[1] >= 3)\n"
        "print(IMAGE_SIZE)\n",
        {},
        (),
    ),
)
