"""Assignment 1, preprocessing: scaling, standardising, one-hot labels, the split, the pipeline."""

from __future__ import annotations

import numpy as np

from tlcourse.grading.autotests import Assignment, JudgeContext, Test, answer
from tlcourse.grading.kernel import record
from tlcourse.grading.student import checks
from tlcourse.pipeline import take_per_class

#: (image_size, batch_size) of the pipelines the grader asks for.
PIPELINES = ((64, 16), (32, 32))


def inputs(context: JudgeContext) -> dict[str, np.ndarray]:
    """Training images the notebook did not pick (the course's seed), extremes, split labels."""
    train = context.train
    chosen = take_per_class(train.labels, 5, seed=context.seed)
    rng = np.random.default_rng(context.seed)
    return {
        "images": train.images[chosen],
        "labels": train.labels[chosen],
        "extremes": np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)]),
        "classes": np.arange(10),
        "split_labels": rng.permutation(np.repeat(np.arange(10), 50)),
    }


def _probe_to_unit(answers, given):
    to_unit = answer(answers, "to_unit")
    return {
        "images": record.array(to_unit(given["images"]), "to_unit"),
        "extremes": record.array(to_unit(given["extremes"]), "to_unit"),
    }


def _judge_to_unit(results, given, _context):
    checks.check_unit_scaled(results["images"], given["images"])
    checks.check_unit_scaled(results["extremes"], given["extremes"])


def _probe_standardize(answers, given):
    return {"images": record.array(answer(answers, "standardize")(given["images"]), "standardize")}


def _judge_standardize(results, given, _context):
    checks.check_standardized(results["images"], given["images"])


def _probe_encode_labels(answers, given):
    encode = answer(answers, "encode_labels")
    return {
        "labels": record.array(encode(given["labels"]), "encode_labels"),
        "classes": record.array(encode(given["classes"]), "encode_labels"),
    }


def _judge_encode_labels(results, given, _context):
    checks.check_one_hot(results["labels"], given["labels"])
    checks.check_one_hot(results["classes"], given["classes"])


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
        "test_to_unit": Test(_probe_to_unit, _judge_to_unit),
        "test_standardize": Test(_probe_standardize, _judge_standardize),
        "test_encode_labels": Test(_probe_encode_labels, _judge_encode_labels),
        "test_split": Test(_probe_split, _judge_split),
        "test_make_pipeline": Test(_probe_make_pipeline, _judge_make_pipeline),
    },
)
