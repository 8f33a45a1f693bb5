"""Assignment 1, preprocessing: scaling, standardising, one-hot labels, the split, the pipeline.

Each test cell is worth 2 points. The rubric prices a mistake by what it leaves of the
exercise: a step left out, or the wrong kind of step (raw pixels, no standardisation, labels
not one-hot, a leaking split), costs both points; a step done with a slip in a constant, an
order or a parameter (/256, [-1, 1], BGR, 9 columns, an ignored seed or batch size) costs one;
the right values in another dtype cost one; bilinear resizing done with another interpolation
costs half a point. A rubric lists every mistake its judge can name.
"""

from __future__ import annotations

import numpy as np

from tlcourse.grading.autotests import Assignment, JudgeContext, Test, answer
from tlcourse.grading.kernel import record
from tlcourse.grading.student import checks
from tlcourse.pipeline import take_per_class

#: (image_size, batch_size) of the pipelines the grader asks for.
PIPELINES = ((64, 16), (32, 32))

#: The same slips cost the same wherever they show (scaling, standardising, the pipeline).
_SCALING = {
    checks.NOT_NORMALISED: 2,
    checks.WRONG_CONSTANT: 1,
    checks.SIGNED_RANGE: 1,
    checks.OWN_RANGE: 1,
    checks.WRONG_DTYPE: 1,
}
_STANDARDISING = {
    **_SCALING,
    checks.NOT_STANDARDISED: 2,
    checks.MEAN_STD_SWAPPED: 1,
    checks.BGR_ORDER: 1,
}
_LABELS = {checks.NOT_ONE_HOT: 2, checks.WRONG_WIDTH: 1, checks.LABELS_SHIFTED: 1}


def inputs(context: JudgeContext) -> dict[str, np.ndarray]:
    """Training images the notebook did not pick (the course's seed), extremes, split labels."""
    train = context.train
    chosen = take_per_class(train.labels, 5, seed=context.seed)
    rng = np.random.default_rng(context.seed)
    images = train.images[chosen]
    return {
        "images": images,
        "labels": train.labels[chosen],
        "extremes": np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)]),
        # dim images (no pixel above 127): scaling by the data's own maximum shows on them
        "dim": (images[:10] // 2).astype(np.uint8),
        "classes": np.arange(10),
        "first_nine": checks.FIRST_NINE,
        "split_labels": rng.permutation(np.repeat(np.arange(10), 50)),
    }


def _probe_to_unit(answers, given):
    to_unit = answer(answers, "to_unit")
    return {
        key: record.array(to_unit(given[key]), "to_unit") for key in ("images", "dim", "extremes")
    }


def _judge_to_unit(results, given, _context):
    for key in ("images", "dim", "extremes"):
        checks.check_unit_scaled(results[key], given[key])


def _probe_standardize(answers, given):
    standardize = answer(answers, "standardize")
    return {key: record.array(standardize(given[key]), "standardize") for key in ("images", "dim")}


def _judge_standardize(results, given, _context):
    for key in ("images", "dim"):
        checks.check_standardized(results[key], given[key])


_LABEL_SAMPLES = ("labels", "classes", "first_nine")


def _probe_encode_labels(answers, given):
    encode = answer(answers, "encode_labels")
    return checks.encodings(encode, {key: given[key] for key in _LABEL_SAMPLES})


def _judge_encode_labels(results, given, _context):
    checks.check_encodings(results, {key: given[key] for key in _LABEL_SAMPLES})


def _probe_split(answers, given):
    split = answer(answers, "split")
    found = {}
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        train, val = record.index_pair(split(given["split_labels"], seed=seed), "split")
        found |= {f"{name}.train": train, f"{name}.val": val}
    return found


def _judge_split(results, given, _context):
    pair = lambda name: (results[f"{name}.train"], results[f"{name}.val"])  # noqa: E731
    checks.check_split_results(pair("first"), pair("again"), pair("other"), given["split_labels"])


def _probe_make_pipeline(answers, given):
    make = answer(answers, "make_pipeline")
    found = {}
    for size, batch in PIPELINES:
        dataset = make(given["images"], given["labels"], image_size=size, batch_size=batch)
        found[f"{size}.x"], found[f"{size}.y"] = record.first_batch(dataset)
    return found


def _judge_make_pipeline(results, given, _context):
    for size, batch in PIPELINES:
        checks.check_batch(
            results[f"{size}.x"],
            results[f"{size}.y"],
            given["images"],
            given["labels"],
            image_size=size,
            batch_size=batch,
        )


ASSIGNMENT = Assignment(
    "01-preprocessing",
    inputs,
    {
        "test_to_unit": Test(_probe_to_unit, _judge_to_unit, _SCALING),
        "test_standardize": Test(_probe_standardize, _judge_standardize, _STANDARDISING),
        "test_encode_labels": Test(_probe_encode_labels, _judge_encode_labels, _LABELS),
        "test_split": Test(
            _probe_split,
            _judge_split,
            {
                checks.OVERLAP: 2,
                checks.WRONG_FRACTION: 1,
                checks.NOT_STRATIFIED: 1,
                checks.SEED_IGNORED: 1,
            },
        ),
        "test_make_pipeline": Test(
            _probe_make_pipeline,
            _judge_make_pipeline,
            {
                **_STANDARDISING,
                **_LABELS,
                checks.SHUFFLED: 1,
                checks.BATCH_SIZE_IGNORED: 1,
                checks.NOT_RESIZED: 1,
                checks.RESIZE_METHOD: 0.5,
            },
        ),
    },
)
