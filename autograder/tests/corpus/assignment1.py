"""Assignment 1's corpus (preprocessing): realistic mistakes and valid alternative solutions.

Every test cell is worth 2 points; the rubric (``tlcourse.grading.autotests.preprocessing``)
costs a missing or wrong kind of step 2, a slip (a constant, an order, a parameter, the dtype)
1, another interpolation than bilinear 0.5. Expected scores were decided before grading.
"""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

A = "01-preprocessing"


def _to_unit(body: str) -> str:
    return "def to_unit(images):\n" + body


def _standardize(unit: str, result: str = "(unit - mean) / std") -> str:
    return (
        "def standardize(images):\n"
        f"    unit = {unit}\n"
        "    mean = np.asarray(IMAGENET_MEAN, np.float32)\n"
        "    std = np.asarray(IMAGENET_STD, np.float32)\n"
        f"    return {result}\n"
    )


def _encode(body: str) -> str:
    return "def encode_labels(labels):\n" + body


def _split(call: str, returned: str = "np.sort(train_idx), np.sort(val_idx)") -> str:
    return (
        "def split(labels, seed):\n"
        "    from sklearn.model_selection import train_test_split\n"
        "    indices = np.arange(len(labels))\n"
        f"    train_idx, val_idx = {call}\n"
        f"    return {returned}\n"
    )


def _make_dataset(**arguments: str) -> str:
    given = {
        "num_classes": "10",
        "batch_size": "batch_size",
        "normalization": "'imagenet'",
        "image_size": "image_size",
        **arguments,
    }
    shown = ", ".join(f"{k}={v}" for k, v in given.items() if v)
    return (
        "def make_pipeline(images, labels, image_size, batch_size):\n"
        "    from tlcourse.pipeline import make_dataset\n"
        f"    return make_dataset(images, labels, {shown})\n"
    )


def _by_hand(resize: str, labels: str = "tf.one_hot(y, 10)", first: str = "resize") -> str:
    """A tf.data pipeline written with map and batch; ``first``: resize or normalise first."""
    steps = (
        ["x = " + resize, "x = (x / 255.0 - mean) / std"]
        if first == "resize"
        else ["x = (x / 255.0 - mean) / std", "x = " + resize]
    )
    body = "".join(f"        {step}\n" for step in steps)
    return (
        "def make_pipeline(images, labels, image_size, batch_size):\n"
        "    import tensorflow as tf\n"
        "    mean = tf.constant(IMAGENET_MEAN, tf.float32)\n"
        "    std = tf.constant(IMAGENET_STD, tf.float32)\n"
        "\n"
        "    def prepare(x, y):\n"
        "        x = tf.cast(x, tf.float32)\n"
        f"{body}"
        f"        return x, {labels}\n"
        "\n"
        "    dataset = tf.data.Dataset.from_tensor_slices((images, labels))\n"
        "    return dataset.batch(batch_size).map(prepare)\n"
    )


_UNIT = "np.asarray(images).astype(np.float32) / np.float32(255.0)"

CASES: tuple[Mistake, ...] = (
    # ---------------------------------------------------------------- to_unit
    Mistake(
        "not-normalised",
        A,
        "to_unit",
        _to_unit("    return np.asarray(images).astype(np.float32)\n"),
        {"test_to_unit": 0},
        ("Known mistake: data not normalised", "divide the uint8 pixels by 255"),
        diagnoses=(checks.NOT_NORMALISED,),
    ),
    Mistake(
        "to-unit-float64",
        A,
        "to_unit",
        _to_unit("    return np.asarray(images) / 255.0\n"),
        {"test_to_unit": 1},
        ("Known mistake: values right but not float32", "float64"),
        diagnoses=(checks.WRONG_DTYPE,),
    ),
    Mistake(
        "to-unit-by-256",
        A,
        "to_unit",
        _to_unit("    return np.asarray(images, np.float32) / 256\n"),
        {"test_to_unit": 1},
        ("Known mistake: pixels divided by the wrong constant", "divided by 256, not by 255"),
        diagnoses=(checks.WRONG_CONSTANT,),
    ),
    Mistake(
        "to-unit-minus-one-to-one",
        A,
        "to_unit",
        _to_unit("    return np.asarray(images, np.float32) / 127.5 - 1.0\n"),
        {"test_to_unit": 1},
        ("Known mistake: pixels scaled to [-1, 1]",),
        diagnoses=(checks.SIGNED_RANGE,),
    ),
    Mistake(
        "to-unit-per-image-maximum",
        A,
        "to_unit",
        _to_unit(
            "    x = np.asarray(images, np.float32)\n"
            "    return x / x.max(axis=(1, 2, 3), keepdims=True)\n"
        ),
        {"test_to_unit": 1},
        ("Known mistake: pixels scaled by the data's own range",),
        diagnoses=(checks.OWN_RANGE,),
    ),
    # ---------------------------------------------------------------- standardize
    Mistake(
        "mean-only",
        A,
        "standardize",
        "def standardize(images):\n"
        "    unit = np.asarray(images, np.float32) / 255.0\n"
        "    return unit - np.asarray(IMAGENET_MEAN, np.float32)\n",
        {"test_standardize": 0},
        ("Known mistake: data not standardised", "did not divide by IMAGENET_STD"),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
    Mistake(
        "standardize-std-only",
        A,
        "standardize",
        _standardize(_UNIT, "unit / std"),
        {"test_standardize": 0},
        ("Known mistake: data not standardised", "did not subtract IMAGENET_MEAN"),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
    Mistake(
        "standardize-by-256",
        A,
        "standardize",
        _standardize("np.asarray(images, np.float32) / 256.0"),
        {"test_standardize": 1},
        ("Known mistake: pixels divided by the wrong constant", "divided by 256"),
        diagnoses=(checks.WRONG_CONSTANT,),
    ),
    Mistake(
        "standardize-mean-std-swapped",
        A,
        "standardize",
        _standardize(_UNIT, "(unit - std) / mean"),
        {"test_standardize": 1},
        ("Known mistake: ImageNet mean and std swapped",),
        diagnoses=(checks.MEAN_STD_SWAPPED,),
    ),
    Mistake(
        "standardize-bgr",
        A,
        "standardize",
        _standardize(_UNIT, "(unit[..., ::-1] - mean) / std"),
        {"test_standardize": 1},
        ("Known mistake: channels in BGR order",),
        diagnoses=(checks.BGR_ORDER,),
    ),
    # ---------------------------------------------------------------- encode_labels
    Mistake(
        "labels-not-one-hot",
        A,
        "encode_labels",
        _encode("    return np.asarray(labels, np.float32)\n"),
        {"test_encode_labels": 0},
        ("Known mistake: labels not one-hot", "tlcourse.preprocessing.one_hot"),
        diagnoses=(checks.NOT_ONE_HOT,),
    ),
    Mistake(
        "labels-nine-columns",
        A,
        "encode_labels",
        _encode("    return np.eye(9, dtype=np.float32)[np.asarray(labels)]\n"),
        {"test_encode_labels": 1},
        ("Known mistake: one-hot rows without 10 columns", "Rows have 9 columns"),
        diagnoses=(checks.WRONG_WIDTH,),
    ),
    Mistake(
        "labels-width-from-largest-label",
        A,
        "encode_labels",
        _encode(
            "    labels = np.asarray(labels)\n"
            "    return np.eye(labels.max() + 1, dtype=np.float32)[labels]\n"
        ),
        {"test_encode_labels": 1},
        ("Known mistake: one-hot rows without 10 columns", "labels 0..8"),
        diagnoses=(checks.WRONG_WIDTH,),
    ),
    Mistake(
        "labels-off-by-one",
        A,
        "encode_labels",
        _encode("    return np.eye(10, dtype=np.float32)[np.asarray(labels) - 1]\n"),
        {"test_encode_labels": 1},
        ("Known mistake: labels off by one", "shifted by -1"),
        diagnoses=(checks.LABELS_SHIFTED,),
    ),
    # ---------------------------------------------------------------- split
    Mistake(  # the rubric now prices a missing stratification at 1 of 2 (it cost 2 before)
        "split-not-stratified",
        A,
        "split",
        "def split(labels, seed):\n"
        "    order = np.random.default_rng(seed).permutation(len(labels))\n"
        "    cut = int(0.8 * len(labels))\n"
        "    return np.sort(order[:cut]), np.sort(order[cut:])\n",
        {"test_split": 1},
        ("Known mistake: split not stratified", "stratify=labels"),
        diagnoses=(checks.NOT_STRATIFIED,),
    ),
    Mistake(
        "split-test-size-swapped",
        A,
        "split",
        _split("train_test_split(indices, test_size=0.8, stratify=labels, random_state=seed)"),
        {"test_split": 1},
        ("Known mistake: validation share not 20%", "Validation holds 80%", "swapped"),
        diagnoses=(checks.WRONG_FRACTION,),
    ),
    Mistake(
        "split-unseeded",
        A,
        "split",
        _split("train_test_split(indices, test_size=0.2, stratify=labels)"),
        {"test_split": 1},
        ("Known mistake: split ignores its seed", "The same seed gave two different splits"),
        diagnoses=(checks.SEED_IGNORED,),
    ),
    Mistake(
        "split-constant-seed",
        A,
        "split",
        _split("train_test_split(indices, test_size=0.2, stratify=labels, random_state=42)"),
        {"test_split": 1},
        ("Known mistake: split ignores its seed", "Seeds 0 and 1 gave the same split"),
        diagnoses=(checks.SEED_IGNORED,),
    ),
    Mistake(
        "split-overlapping",
        A,
        "split",
        _split(
            "train_test_split(indices, test_size=0.2, stratify=labels, random_state=seed)",
            "indices, np.sort(val_idx)",
        ),
        {"test_split": 0},
        ("Known mistake: train and validation overlap", "100 images are in both"),
        diagnoses=(checks.OVERLAP,),
    ),
    # ---------------------------------------------------------------- make_pipeline
    Mistake(
        "pipeline-unit-scaling",
        A,
        "make_pipeline",
        _make_dataset(normalization="'unit'"),
        {"test_make_pipeline": 0},
        ("Known mistake: data not standardised",),
        diagnoses=(checks.NOT_STANDARDISED,),
    ),
    Mistake(
        "pipeline-shuffled",
        A,
        "make_pipeline",
        _make_dataset(shuffle="True", seed="0"),
        {"test_make_pipeline": 1},
        ("Known mistake: pipeline shuffled", "no .shuffle()"),
        diagnoses=(checks.SHUFFLED,),
    ),
    Mistake(
        "pipeline-not-resized",
        A,
        "make_pipeline",
        _make_dataset(image_size=""),
        {"test_make_pipeline": 1},
        ("Known mistake: images not resized", "tf.image.resize"),
        diagnoses=(checks.NOT_RESIZED,),
    ),
    Mistake(
        "pipeline-batch-size-ignored",
        A,
        "make_pipeline",
        _make_dataset(batch_size="32"),
        {"test_make_pipeline": 1},
        ("Known mistake: batch_size ignored", "holds 32 images where batch_size=16"),
        diagnoses=(checks.BATCH_SIZE_IGNORED,),
    ),
    Mistake(  # the exercise asks for bilinear; nearest is a slip worth half a point
        "pipeline-nearest-neighbour",
        A,
        "make_pipeline",
        _by_hand("tf.image.resize(x, (image_size, image_size), method='nearest')"),
        {"test_make_pipeline": 1.5},
        ("Known mistake: resized without bilinear interpolation", "'nearest'"),
        diagnoses=(checks.RESIZE_METHOD,),
    ),
    Mistake(
        "pipeline-integer-labels",
        A,
        "make_pipeline",
        _by_hand("tf.image.resize(x, (image_size, image_size))", labels="y"),
        {"test_make_pipeline": 0},
        ("Known mistake: labels not one-hot",),
        diagnoses=(checks.NOT_ONE_HOT,),
    ),
    # ---------------------------------------------------------------- valid alternatives
    Mistake(
        "valid-float64-arithmetic-cast-at-the-end",
        A,
        "to_unit",
        _to_unit("    return (np.asarray(images) / 255).astype(np.float32)\n"),
        {},
        (),
        also={
            "standardize": "def standardize(images):\n"
            "    mean = 255 * np.asarray(IMAGENET_MEAN)\n"
            "    std = 255 * np.asarray(IMAGENET_STD)\n"
            "    return ((np.asarray(images) - mean) / std).astype(np.float32)\n",
        },
    ),
    Mistake(
        "valid-to-categorical",
        A,
        "encode_labels",
        _encode("    import keras\n\n    return keras.utils.to_categorical(labels, 10)\n"),
        {},
        (),
    ),
    Mistake(
        "valid-integer-one-hot",
        A,
        "encode_labels",
        _encode("    return np.eye(10, dtype=int)[np.asarray(labels)]\n"),
        {},
        (),
    ),
    Mistake(
        "valid-float64-one-hot",
        A,
        "encode_labels",
        _encode(
            "    rows = np.zeros((len(labels), 10))\n"
            "    rows[np.arange(len(labels)), labels] = 1.0\n"
            "    return rows\n"
        ),
        {},
        (),
    ),
    Mistake(
        "valid-stratified-shuffle-split",
        A,
        "split",
        "def split(labels, seed):\n"
        "    from sklearn.model_selection import StratifiedShuffleSplit\n"
        "    splitter = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)\n"
        "    train_idx, val_idx = next(splitter.split(np.zeros(len(labels)), labels))\n"
        "    return train_idx, val_idx\n",
        {},
        (),
    ),
    Mistake(
        "valid-split-by-hand",
        A,
        "split",
        "def split(labels, seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    train_idx, val_idx = [], []\n"
        "    for c in np.unique(labels):\n"
        "        members = rng.permutation(np.flatnonzero(labels == c))\n"
        "        cut = round(0.2 * len(members))\n"
        "        val_idx.extend(members[:cut])\n"
        "        train_idx.extend(members[cut:])\n"
        "    return np.array(sorted(train_idx)), np.array(sorted(val_idx))\n",
        {},
        (),
    ),
    Mistake(
        "valid-pipeline-by-hand",
        A,
        "make_pipeline",
        _by_hand("tf.image.resize(x, (image_size, image_size))"),
        {},
        (),
    ),
    Mistake(  # bilinear resizing and the per-channel standardisation commute
        "valid-pipeline-normalise-then-resize",
        A,
        "make_pipeline",
        _by_hand("tf.image.resize(x, (image_size, image_size))", first="normalise"),
        {},
        (),
    ),
)
