"""The grader's own evaluation of the fine-tuning notebook's model, written to the gradebook.

Runs in the grader's process after autograding: the notebook's kernel is gone by then and
never shares this process. The architecture is built here (``transfer_model``); only the
weights come from the submission (``model.weights.h5``, arrays read by Keras, nothing
unpickled or executed). The held-out images live in the course directory, never in a
release (no notebook can load them: :func:`~tlcourse.grading.grade.course.heldout_indices`),
and their sha256 is checked against the one recorded when the course was created.

The points measure **fine-tuning**. Before any accuracy counts, the weights must show it:

* every backbone block moved from its ImageNet values (:data:`MOVED_AT`): a head-only run (E1)
  or handed-in baseline weights keep them, and score 0 (:data:`checks.NOT_FINE_TUNED`);
Training on the validation images is caught by the notebook's test_train (the images ``fit``
trained on), not here: four short epochs do not memorise them, so accuracy on the validation
images is no proof that the model saw them.

Then the score: 0 up to :data:`ZERO_AT` (chance is 10%), full marks from :data:`FULL_AT`,
linear in between. The lines come from the calibration (``autograder/calibrate.py``, records in
``results/grading/``): many graded runs of the reference E3 and of a head-only E1; see
``solutions/03-finetuning/README.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tlcourse.grading.grade.course import GRADER_DIR, HELDOUT_FILE, CourseError
from tlcourse.grading.student import checks
from tlcourse.grading.student.handin import read_handin
from tlcourse.hub import sha256sum

ASSIGNMENT = "03-finetuning"
GRADE_CELL = "validation_accuracy"
#: Held-out accuracy at and below which the score is 0 (a collapsed run sits at 10%).
ZERO_AT = 0.15
#: Held-out accuracy from which the score is full: the reference E3's mean - 2 std over seeds
#: 0-9, 40.7% - 2 x 2.4% = 35.9%, rounded down (results/grading/03-finetuning-calibration.json).
FULL_AT = 0.35
#: Smallest relative change of a backbone block (||w - w_imagenet|| / ||w_imagenet||) that
#: counts as fine-tuned: head-only runs change every block by exactly 0, the reference E3's
#: least-moved block by 5.6e-3 or more (the same calibration).
MOVED_AT = 1e-4
HELDOUT_NAME = "1,000 held-out CIFAR-10 images (100 a class) that no notebook can load"


@dataclass(frozen=True)
class Evidence:
    """What the grader measured on the handed-in weights (and the experiment they claim)."""

    experiment: str
    heldout_accuracy: float
    #: Relative change from ImageNet of each backbone block (conv1 .. fire9).
    block_change: dict[str, float]

    @property
    def unmoved(self) -> list[str]:
        return [block for block, change in self.block_change.items() if change < MOVED_AT]


@dataclass(frozen=True)
class AccuracyGrade:
    accuracy: float | None
    score: float
    max_score: float
    comment: str
    evidence: Evidence | None = None

    def record(self) -> dict:
        """Plain data for the instructor's report and the calibration."""
        return asdict(self.evidence) if self.evidence else {}


def score_for(accuracy: float, max_score: float) -> float:
    """Points for a held-out accuracy: linear from ZERO_AT (0) to FULL_AT (max), rounded to 0.1."""
    share = (accuracy - ZERO_AT) / (FULL_AT - ZERO_AT)
    return round(float(np.clip(share, 0.0, 1.0)) * max_score, 1)


def rubric(max_score: float) -> list[tuple[str, str]]:
    """(what the grader finds, what it costs) for the accuracy cell's rubric."""
    return [
        (checks.NOT_FINE_TUNED, f"{max_score:g} (all)"),
        ("no readable hand-in (the last cell did not run)", f"{max_score:g} (all)"),
        (
            f"held-out accuracy below {FULL_AT:.0%}",
            f"{max_score:g} x ({FULL_AT:.0%} - accuracy) / ({FULL_AT:.0%} - {ZERO_AT:.0%}), "
            f"all at {ZERO_AT:.0%} or less",
        ),
    ]


def block_change(model, reference) -> dict[str, float]:
    """Relative change of each backbone block's weights in ``model`` from ``reference``'s."""
    from tlcourse.freeze import block_of, trainable_blocks

    backbone = [b for b in trainable_blocks("E3") if b != "head"]
    moved = {block: 0.0 for block in backbone}
    norms = {block: 0.0 for block in backbone}
    for layer in model.layers:
        block = block_of(layer.name)
        if block not in moved or not layer.weights:
            continue
        for new, old in zip(
            layer.get_weights(), reference.get_layer(layer.name).get_weights(), strict=True
        ):
            moved[block] += float(np.sum((new - old) ** 2))
            norms[block] += float(np.sum(old**2))
    return {block: float(np.sqrt(moved[block] / norms[block])) for block in backbone}


def evaluate_handin(folder: Path, heldout: Path, imagenet: str | Path = "imagenet") -> Evidence:
    """Evaluate the weights in ``folder`` on a model built here, on the held-out images, and
    measure how far each backbone block moved from the ImageNet weights (``imagenet``: the
    course's weights file)."""
    from tlcourse.config import CIFAR10_CLASSES
    from tlcourse.evaluate import evaluate_model
    from tlcourse.models import transfer_model
    from tlcourse.pipeline import make_dataset

    handin = read_handin(folder)
    shape = (handin.image_size, handin.image_size, 3)
    model = transfer_model(classes=10, input_shape=shape, weights=None)
    model.load_weights(handin.weights)
    with np.load(heldout, allow_pickle=False) as data:
        dataset = make_dataset(
            data["images"],
            data["labels"],
            num_classes=10,
            batch_size=250,
            normalization=handin.normalization,
            image_size=handin.image_size,
        )
    reference = transfer_model(classes=10, input_shape=shape, weights=imagenet)
    return Evidence(
        experiment=handin.experiment,
        heldout_accuracy=evaluate_model(model, dataset, CIFAR10_CLASSES).accuracy,
        block_change=block_change(model, reference),
    )


def imagenet_weights(course: Path) -> str:
    """The ImageNet weights the course was made with (whatever this process's environment)."""
    from tlcourse.config import WEIGHTS_ENV
    from tlcourse.grading.grade.course import course_environment

    return course_environment(course).get(WEIGHTS_ENV) or "imagenet"


def _mistake(evidence: Evidence) -> str | None:
    """The comment's first sentence when the weights show a known mistake, else ``None``."""
    experiment = evidence.experiment
    if experiment != "E3" or evidence.unmoved:
        kept = evidence.unmoved or ["every backbone block"]
        return str(
            checks.mistake(
                checks.NOT_FINE_TUNED,
                f"The handed-in weights of {', '.join(kept)} are still the ImageNet ones "
                f"(the hand-in says {experiment}): only the head trained. These points are for "
                "fine-tuning every layer (experiment 'E3').",
            )
        )
    return None


def grade_accuracy(course: Path, folder: Path, max_score: float, expected_sha256: str):
    """Evaluate the hand-in in ``folder``; an :class:`AccuracyGrade` with a comment either way."""
    heldout = course / GRADER_DIR / HELDOUT_FILE
    if sha256sum(heldout) != expected_sha256:
        raise CourseError(
            f"{heldout} changed since the course was created (sha256 differs): recreate it with "
            "tlcourse course init --force before grading."
        )
    try:
        evidence = evaluate_handin(folder, heldout, imagenet_weights(course))
    except Exception as error:  # noqa: BLE001 - any failure is the submission's score of 0
        return AccuracyGrade(
            None, 0.0, max_score, f"No accuracy: {error} (0 of {max_score:g} points)."
        )
    accuracy = evidence.heldout_accuracy
    found = _mistake(evidence)
    if found is not None:
        comment = f"{found} Score: 0 of {max_score:g}."
        return AccuracyGrade(accuracy, 0.0, max_score, comment, evidence)
    score = score_for(accuracy, max_score)
    comment = (
        f"The grader evaluated your trained weights on {HELDOUT_NAME}: {accuracy:.1%} accuracy "
        f"(every backbone block fine-tuned). Score: {score:g} of {max_score:g} (0 at "
        f"{ZERO_AT:.0%} or less, full marks from {FULL_AT:.0%}, linear in between)."
    )
    return AccuracyGrade(accuracy, score, max_score, comment, evidence)


def write_grade(gradebook, assignment: str, student: str, grade: AccuracyGrade) -> None:
    """Set the accuracy task cell's score and comment in nbgrader's gradebook."""
    cell = gradebook.find_grade(GRADE_CELL, assignment, assignment, student)
    cell.manual_score = grade.score
    cell.needs_manual_grade = False
    comment = gradebook.find_comment(GRADE_CELL, assignment, assignment, student)
    comment.manual_comment = grade.comment
    gradebook.db.commit()
