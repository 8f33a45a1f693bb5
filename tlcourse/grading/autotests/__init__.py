"""The autograded tests of each assignment: what the kernel records, and how the grader judges.

A test cell's points are decided outside the student's kernel. For every test cell the grader
knows (by its ``grade_id``) a :class:`Test` of two halves:

* ``probe(answers, inputs)`` runs **in the graded kernel**, after the student's cells: it calls
  the student's functions on the grader's inputs and returns plain data (arrays, numbers,
  text) through :mod:`tlcourse.grading.kernel.record`. It is untrusted: the student's code ran
  in the same interpreter and may have changed anything in it.
* ``judge(results, inputs, context)`` runs **in the grader's own process**, on the results read
  back as untrusted data and on the grader's own copy of the inputs; it raises
  ``AssertionError`` (with a hint) to fail the test. Nothing the kernel did can reach it.

A judge that fails names, where it can, a known mistake
(:class:`~tlcourse.grading.student.checks.Mistake`); the test's ``rubric`` says what that
mistake costs, once, of the cell's points. Any other failure costs them all.

So a submission earns a test's points only by returning data that passes the check on inputs
it did not choose: patching numpy, the checks or the grader's code in the kernel changes
nothing but what the kernel returns. The inputs are drawn with the course's own seed, which
lives in the course directory that no kernel can see.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Data = dict[str, np.ndarray]


@dataclass(frozen=True)
class JudgeContext:
    """What the grader knows when it judges: its data, weights, budget and the course's seed."""

    data: Path | None
    weights: Path | None
    budget: object
    seed: int

    @functools.cached_property
    def train(self):
        """The training images of the grader's data (never the held-out images)."""
        from tlcourse.data import load_cifar10

        return load_cifar10(self.data, download=False)[0]


@dataclass(frozen=True)
class Test:
    """One test cell: its probe (in the kernel) and its judge (in the grader)."""

    probe: Callable[[Mapping, Mapping[str, np.ndarray]], Data]
    judge: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray], JudgeContext], None]
    #: Points each known mistake this test can name costs (every one it names is listed, so the
    #: rubric is complete); a failure the rubric does not name costs all the cell's points.
    rubric: Mapping[str, float] = field(default_factory=dict)

    def score(self, points: float, mistake: str | None) -> float:
        """The cell's points after a failure that named ``mistake`` (``None``: unnamed)."""
        cost = self.rubric.get(mistake, points) if mistake else points
        return max(round(points - cost, 2), 0.0)


@dataclass(frozen=True)
class Assignment:
    """An assignment's tests by ``grade_id``, and the inputs its probes are given."""

    name: str
    inputs: Callable[[JudgeContext], Data]
    tests: dict[str, Test]


def answer(answers: Mapping, name: str):
    """The student's ``name`` from the notebook's namespace, or a message saying it is missing."""
    if name not in answers:
        raise AssertionError(
            f"{name} is not defined in the notebook: keep its name, and run the cell that "
            "defines it."
        )
    return answers[name]


def prefixed(prefix: str, data: Mapping[str, np.ndarray]) -> Data:
    """``data`` with every key under ``prefix``: several recordings in one result."""
    return {f"{prefix}.{key}": value for key, value in data.items()}


def unprefixed(prefix: str, data: Mapping[str, np.ndarray]) -> Data:
    """The entries of ``data`` recorded under ``prefix``, without it."""
    start = f"{prefix}."
    return {key[len(start) :]: value for key, value in data.items() if key.startswith(start)}


def registry() -> dict[str, Assignment]:
    """Every assignment whose tests are judged by the grader, by name."""
    from tlcourse.grading.autotests import finetuning, freezing, preprocessing

    found = (preprocessing.ASSIGNMENT, freezing.ASSIGNMENT, finetuning.ASSIGNMENT)
    return {assignment.name: assignment for assignment in found}


def find_test(assignment: str, grade_id: str) -> Test | None:
    """The test of ``grade_id`` in ``assignment``; ``None`` if the grader has no judge for it."""
    found = registry().get(assignment)
    return found.tests.get(grade_id) if found else None


@dataclass(frozen=True)
class RubricLine:
    """One line of an assignment's rubric: what a mistake in a graded cell costs."""

    cell: str
    points: float
    mistake: str
    cost: str


def rubric(name: str, points: Mapping[str, float]) -> list[RubricLine]:
    """The rubric of assignment ``name``: every priced mistake of each test cell (``points``:
    the notebook's points by grade_id), then what any other failure costs, then the grader's
    own evaluation where the assignment has one."""
    from tlcourse.grading.grade import accuracy

    lines = []
    for grade_id, test in registry()[name].tests.items():
        cell_points = points[grade_id]
        for mistake, cost in test.rubric.items():
            shown = f"{cell_points:g} (all)" if cost >= cell_points else f"{cost:g}"
            lines.append(RubricLine(grade_id, cell_points, mistake, shown))
        lines.append(
            RubricLine(grade_id, cell_points, "any other failed check", f"{cell_points:g} (all)")
        )
    if name == accuracy.ASSIGNMENT:
        lines += [
            RubricLine(accuracy.GRADE_CELL, points[accuracy.GRADE_CELL], mistake, cost)
            for mistake, cost in accuracy.rubric(points[accuracy.GRADE_CELL])
        ]
    return lines
