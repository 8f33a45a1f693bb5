"""The grader's own evaluation of the fine-tuning notebook's model, written to the gradebook.

Runs in the grader's process after autograding: the notebook's kernel is gone by then and
never shares this process. The architecture is built here (``transfer_model``); only the
weights come from the submission (``model.weights.h5``, arrays read by Keras, nothing
unpickled or executed). The held-out images live in the course directory, never in a
release, and their sha256 is checked against the one recorded when the course was created.

Score: 0 up to :data:`ZERO_AT` (chance is 10%), full marks from :data:`FULL_AT`, linear in
between. :data:`FULL_AT` is the reference solution's mean held-out accuracy minus two standard
deviations over 5 calibration seeds (``results/grading/``), so a correct solution gets full
marks whatever its seed; see ``solutions/03-finetuning/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcourse.grading.grade.course import GRADER_DIR, HELDOUT_FILE, CourseError
from tlcourse.grading.student.handin import read_handin
from tlcourse.hub import sha256sum

ASSIGNMENT = "03-finetuning"
GRADE_CELL = "validation_accuracy"
#: Held-out accuracy at and below which the score is 0 (a collapsed run sits at 10%).
ZERO_AT = 0.15
#: Held-out accuracy from which the score is full: calibration mean - 2 std, 41.4% - 2 x 3.1%
#: = 35.2% over seeds 0-4 (results/grading/03-finetuning-calibration.json), rounded down.
FULL_AT = 0.35
HELDOUT_NAME = "1,000 held-out CIFAR-10 images (100 a class)"


@dataclass(frozen=True)
class AccuracyGrade:
    accuracy: float | None
    score: float
    max_score: float
    comment: str


def score_for(accuracy: float, max_score: float) -> float:
    """Points for a held-out accuracy: linear from ZERO_AT (0) to FULL_AT (max), rounded to 0.1."""
    share = (accuracy - ZERO_AT) / (FULL_AT - ZERO_AT)
    return round(float(np.clip(share, 0.0, 1.0)) * max_score, 1)


def evaluate_handin(folder: Path, heldout: Path) -> float:
    """Held-out accuracy of the weights in ``folder`` on a model built here."""
    from tlcourse.config import CIFAR10_CLASSES
    from tlcourse.evaluate import evaluate_model
    from tlcourse.models import transfer_model
    from tlcourse.pipeline import make_dataset

    handin = read_handin(folder)
    model = transfer_model(
        classes=10, input_shape=(handin.image_size, handin.image_size, 3), weights=None
    )
    model.load_weights(handin.weights)
    with np.load(heldout, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    dataset = make_dataset(
        images,
        labels,
        num_classes=10,
        batch_size=250,
        normalization=handin.normalization,
        image_size=handin.image_size,
    )
    return evaluate_model(model, dataset, CIFAR10_CLASSES).accuracy


def grade_accuracy(course: Path, folder: Path, max_score: float, expected_sha256: str):
    """Evaluate the hand-in in ``folder``; an :class:`AccuracyGrade` with a comment either way."""
    heldout = course / GRADER_DIR / HELDOUT_FILE
    if sha256sum(heldout) != expected_sha256:
        raise CourseError(
            f"{heldout} changed since the course was created (sha256 differs): recreate it with "
            "tlcourse course init --force before grading."
        )
    try:
        accuracy = evaluate_handin(folder, heldout)
    except Exception as error:  # noqa: BLE001 - any failure is the submission's score of 0
        return AccuracyGrade(
            None, 0.0, max_score, f"No accuracy: {error} (0 of {max_score:g} points)."
        )
    score = score_for(accuracy, max_score)
    comment = (
        f"The grader evaluated your trained weights on {HELDOUT_NAME}: {accuracy:.1%} accuracy. "
        f"Score: {score:g} of {max_score:g} (0 at {ZERO_AT:.0%} or less, full marks from "
        f"{FULL_AT:.0%}, linear in between)."
    )
    return AccuracyGrade(accuracy, score, max_score, comment)


def write_grade(gradebook, assignment: str, student: str, grade: AccuracyGrade) -> None:
    """Set the accuracy task cell's score and comment in nbgrader's gradebook."""
    cell = gradebook.find_grade(GRADE_CELL, assignment, assignment, student)
    cell.manual_score = grade.score
    cell.needs_manual_grade = False
    comment = gradebook.find_comment(GRADE_CELL, assignment, assignment, student)
    comment.manual_comment = grade.comment
    gradebook.db.commit()
