"""A class graded through nbgrader: solutions, blank exercises, wrong and bad submissions.

Every test reads the one session-scoped graded course (``graded_course``): its gradebook,
feedback HTML and CSV come from real ``nbgrader autograde``/``generate_feedback``/``export``
runs started by ``tlcourse.grading.grade.pool.grade_class``.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from grading_fixtures import ASSIGNMENTS, BAD_INPUT_EXPECTED, PROJECT_ROOT, solution

sys.path.insert(0, str(PROJECT_ROOT / "autograder" / "tests"))
from corpus.mistakes import MISTAKES  # noqa: E402

from tlcourse.grading.autotests import registry  # noqa: E402
from tlcourse.grading.preprocessors.verdicts import PASSED_NOTE  # noqa: E402
from tlcourse.grading.student import checks  # noqa: E402

ALL_KNOWN = (*checks.KNOWN_MISTAKES, *checks.FINETUNING_MISTAKES)


def grade_cells(assignment: str) -> dict[str, dict]:
    """grade_id -> nbgrader metadata of every graded cell (tests, manual answers, tasks)."""
    nb = nbformat.read(solution(assignment), as_version=4)
    cells = (c.metadata.get("nbgrader", {}) for c in nb.cells)
    return {m["grade_id"]: m for m in cells if m.get("grade") or m.get("task")}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_score_full_marks(graded_course, assignment):
    for cell, meta in grade_cells(assignment).items():
        score, max_score = graded_course.grade(assignment, "sol", cell)
        if meta.get("solution"):  # the written answer of assignment 2: graded by hand
            assert score == 0 and max_score == 2
        else:
            assert score == max_score == meta["points"], cell
    assert "Notes from the grader" not in graded_course.feedback(assignment, "sol")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_unmodified_exercises_score_zero(graded_course, assignment):
    score, max_score = graded_course.total(assignment, "blank")
    assert score == 0 and max_score == sum(m["points"] for m in grade_cells(assignment).values())
    assert "NotImplementedError" in graded_course.feedback(assignment, "blank")


@pytest.mark.slow
@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_wrong_submission_gets_partial_score_and_named_feedback(graded_course, mistake):
    a = mistake.assignment
    for cell, meta in grade_cells(a).items():
        if meta.get("solution"):
            continue
        score, _ = graded_course.grade(a, mistake.name, cell)
        assert score == mistake.lost.get(cell, meta["points"]), cell
    feedback = graded_course.feedback(a, mistake.name)
    for text in mistake.feedback:
        assert text in feedback


@pytest.mark.slow
@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_feedback_names_the_cases_own_mistakes_and_no_other(graded_course, mistake):
    """A diagnosis fires only on its mistake: every known mistake the case does not make
    stays unnamed in its feedback (and a valid alternative names none)."""
    feedback = graded_course.feedback(mistake.assignment, mistake.name)
    named = {name for name in ALL_KNOWN if f"Known mistake: {name}." in feedback}
    assert named == set(mistake.diagnoses)


@pytest.mark.slow
@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_every_test_cell_that_loses_points_says_why(graded_course, mistake):
    a = mistake.assignment
    path = graded_course.path / "autograded" / mistake.name / a / f"{a}.ipynb"
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        score, max_score = graded_course.grade(a, mistake.name, meta["grade_id"])
        if score < max_score:
            reasons = [
                o.get("evalue") or o.get("text", "")
                for o in cell.outputs
                if o.output_type == "error" or "Known mistake" in o.get("text", "")
            ]
            assert any(reason.strip() for reason in reasons), (meta["grade_id"], cell.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_solution_is_told_of_no_mistake(graded_course, assignment):
    assert "Known mistake:" not in graded_course.feedback(assignment, "sol")


@pytest.mark.slow
def test_a_submission_graded_twice_gets_the_same_grade(graded_course):
    a = "03-finetuning"
    cells = [c for c, meta in grade_cells(a).items() if not meta.get("solution")]
    first = [graded_course.grade(a, "sol", cell) for cell in cells]
    assert first == [graded_course.grade(a, "sol-again", cell) for cell in cells]
    from tlcourse.grading.grade.pool import report_path

    report = json.loads(report_path(graded_course.path, a).read_text())
    rows = report["students"]
    assert rows["sol"]["held_out_accuracy"] == rows["sol-again"]["held_out_accuracy"]
    assert rows["sol"]["handin_evidence"] == rows["sol-again"]["handin_evidence"]


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(BAD_INPUT_EXPECTED))
def test_bad_input_graded_for_what_works_with_a_note(graded_course, student):
    expected_score, note = BAD_INPUT_EXPECTED[student]
    assert graded_course.total("01-preprocessing", student) == (expected_score, 10)
    feedback = graded_course.feedback("01-preprocessing", student)
    assert "Notes from the grader" in feedback
    assert note in feedback


@pytest.mark.slow
def test_the_class_was_graded_in_parallel_without_failures(graded_course):
    for assignment, result in graded_course.results.items():
        assert not result.failed, (assignment, result.failed)
        assert result.csv.is_file()
    graded = {g["student"] for g in graded_course.results["01-preprocessing"].graded}
    assert {"sol", "blank", *BAD_INPUT_EXPECTED} <= graded


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_shows_the_graders_verdicts_and_none_of_its_machinery(graded_course, assignment):
    source = nbformat.read(solution(assignment), as_version=4)
    assert not any("HIDDEN TESTS" in cell.source for cell in source.cells)  # judged outside
    pages = sorted((graded_course.path / "feedback").glob(f"*/{assignment}/*.html"))
    assert len(pages) >= 3
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        for machinery in ("HIDDEN TESTS", "_tlcourse_probe", ".tlcourse-probes", "tlcourse-guard"):
            assert machinery not in text, (page, machinery)
    reference = graded_course.path / "feedback" / "sol" / assignment / f"{assignment}.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", reference.read_text()))
    assert text.count(PASSED_NOTE.strip()) == len(registry()[assignment].tests)


@pytest.mark.slow
def test_accuracy_is_the_graders_own_evaluation(graded_course, tmp_path):
    """The score comes from the weights alone: random weights score 0 whatever was printed."""
    from tlcourse.grading.grade import accuracy
    from tlcourse.grading.grade.course import SETTINGS_FILE
    from tlcourse.grading.student.handin import save_for_grading
    from tlcourse.models import transfer_model
    from tlcourse.train import TrainConfig

    course = graded_course.path
    sha = json.loads((course / SETTINGS_FILE).read_text())["heldout_sha256"]
    graded = course / "autograded" / "sol" / "03-finetuning"
    result = accuracy.grade_accuracy(course, graded, 6, sha)
    assert result.score == 6 and result.accuracy > accuracy.FULL_AT
    assert f"{result.accuracy:.1%}" in graded_course.feedback("03-finetuning", "sol")
    fake = tmp_path / "fake"
    shutil.copytree(graded, fake)
    (fake / "03-finetuning.ipynb").write_text("validation accuracy: 99.9%")
    config = TrainConfig(experiment="E3", image_size=32, normalization="imagenet")
    save_for_grading(transfer_model(classes=10, weights=None), config, fake)
    cheat = accuracy.grade_accuracy(course, fake, 6, sha)
    assert cheat.score == 0 and cheat.accuracy < accuracy.ZERO_AT


@pytest.mark.slow
def test_rerun_skips_graded_submissions_and_keeps_grades(graded_course):
    from tlcourse.cli import main

    course = graded_course.path
    before = (course / "grades.csv").read_text()
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "02-freezing",
            "--course",
            str(course),
            "--submissions",
            str(graded_course.submissions["02-freezing"]),
        ],
    )
    assert result.exit_code == 0, result.output
    students = 2 + sum(m.assignment == "02-freezing" for m in MISTAKES)
    assert f"graded 0, skipped {students}, not graded 0" in result.output
    assert (course / "grades.csv").read_text() == before


@pytest.mark.slow
def test_nbgraders_own_commands_work_on_the_course(graded_course, tmp_path):
    course = graded_course.path
    out = tmp_path / "export.csv"
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for args in (["generate_feedback", "02-freezing", "--force"], ["export", f"--to={out}"]):
        done = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args],
            cwd=course,
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    sol = [r for r in rows if r["student_id"] == "sol" and r["assignment"] == "02-freezing"]
    assert float(sol[0]["score"]) == 8 and float(sol[0]["max_score"]) == 10
    feedback = graded_course.feedback("02-freezing", "e2-trains-only-fire9")
    assert "Known mistake: wrong layers frozen" in feedback


def test_csv_has_every_graded_student(graded_course):
    rows = list(csv.DictReader((graded_course.path / "grades.csv").open()))
    students = {r["student_id"] for r in rows if r["assignment"] == "03-finetuning"}
    assert {"sol", "blank", "collapsed-at-1e-1"} <= students
    assert Path(graded_course.path / "feedback" / "sol" / "03-finetuning").is_dir()
