"""Grade one submission, in a process of its own: autograde, accuracy, notes, feedback.

``python -m tlcourse.grading.grade.submission COURSE ASSIGNMENT STUDENT --result FILE`` writes its
result as JSON to FILE (student, score, max score, notes, seconds; or the error): a file the
graded kernel cannot reach, unlike this process's stdout, which it inherits.
:func:`grade_submission` is the one place that runs a student's code (through nbgrader's
autograde, whose kernel is its own process), so a sandbox around it wraps every graded run.
nbgrader's gradebook is one sqlite file shared by the workers: a call that finds it locked is
retried.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import textwrap
import time
from pathlib import Path

import nbformat

from tlcourse.files import write_json_atomic
from tlcourse.grading.grade import accuracy
from tlcourse.grading.grade.course import (
    SETTINGS_FILE,
    CourseError,
    apply_course_environment,
    open_api,
    require_success,
)
from tlcourse.grading.grade.intake import notes_path, replace_with_exercise
from tlcourse.grading.preprocessors.feedback import NOTES_FILE

LOCK_RETRIES = 8
TIMEOUT_ERRORS = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError")
#: Errors that a locked set-up cell raises when the grader's environment, not the student's
#: code, is at fault (confirmed by a pre-flight before anything is recorded).
ENVIRONMENT_ERRORS = (
    "DataNotFoundError",
    "DataFormatError",
    "WeightsError",
    "ChecksumError",
    "ModuleNotFoundError",
    "ImportError",
)
#: Exit status of a grading process that found the grader's environment broken.
ENVIRONMENT_EXIT = 3


class EnvironmentBroken(Exception):
    """The grader's environment broke while this submission was graded; nothing was kept."""


def with_retries(call, what: str) -> dict:
    """Run an ``NbGraderAPI`` call, again after a pause while sqlite says it is locked."""
    for attempt in range(LOCK_RETRIES):
        result = call()
        text = f"{result.get('error') or ''}{result.get('log') or ''}"
        if result.get("success") or "database is locked" not in text:
            return require_success(result, what)
        time.sleep(0.5 * 2**attempt * (1 + random.random()))
    return require_success(result, what)


def execution_notes(notebook: Path) -> list[str]:
    """Notes on cells of the graded run that timed out, raised, were stopped or failed a test."""
    from tlcourse.grading.preprocessors.execute import NOT_RUN_ERROR, OUTPUT_CUT_NOTE
    from tlcourse.grading.preprocessors.verdicts import NOT_CHECKED, PARTIAL_NOTE

    partial = PARTIAL_NOTE.split(":")[0]

    output_cut = OUTPUT_CUT_NOTE.split(" here")[0]

    nb = nbformat.read(notebook, as_version=4)
    notes: list[str] = []
    for index, cell in enumerate(nb.cells, start=1):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        for output in cell.get("outputs", []):
            where = f"Cell {index}" + (f" ({meta['grade_id']})" if "grade_id" in meta else "")
            text = str(output.get("text", ""))
            if output.get("output_type") == "stream" and output_cut in text:
                notes.append(f"Cell {index}'s output was cut: it printed more than is kept.")
            if meta.get("grade") and output.get("output_type") == "stream" and partial in text:
                notes.append(f"{where}: " + " ".join(text.split()))  # a mistake, partial credit
            if output.get("output_type") != "error":
                continue
            name = output.get("ename", "")
            value = textwrap.shorten(str(output.get("evalue", "")), 300, placeholder=" [...]")
            if name in TIMEOUT_ERRORS:
                notes.append(
                    f"{where} was stopped: it ran longer than the per-cell time limit. "
                    "Cells after it ran without its results."
                )
            elif name == NOT_RUN_ERROR:
                if value.startswith("stopped:"):
                    notes.append(f"{where}: {value} Later cells did not run and score 0.")
            elif meta.get("grade"):
                if value.startswith(("Known mistake:", NOT_CHECKED)):
                    notes.append(f"{where}: {value}")
            else:
                notes.append(
                    f"{where} raised {name}: {value}. Tests that need its results failed too."
                )
    return list(dict.fromkeys(notes))  # a cell that was stopped is said once


def environment_errors(notebook: Path) -> list[str]:
    """Errors of the environment class raised in locked cells no student edits (set-up)."""
    nb = nbformat.read(notebook, as_version=4)
    found = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("locked") or meta.get("grade") or meta.get("solution"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") in ENVIRONMENT_ERRORS:
                found.append(f"{output.get('ename')}: {output.get('evalue')}")
    return found


def confirm_environment(api, course: Path, assignment: str, student: str, graded: Path) -> None:
    """After a set-up cell failed as a broken environment would: check with a pre-flight.

    A broken environment undoes this submission's autograde (no grade, no feedback) and raises
    :class:`EnvironmentBroken`; a sound one means the student's code caused it: graded as usual.
    """
    from tlcourse.grading.grade.preflight import (
        environment_message,
        recorded_files_problems,
        run_probe,
    )

    changed = recorded_files_problems(course)
    problems = [("files", text) for text in changed] or run_probe(course).get("problems")
    if not problems:
        return
    undo_autograde(api, assignment, student, graded)
    raise EnvironmentBroken(environment_message(course, [tuple(p) for p in problems]))


def undo_autograde(api, assignment: str, student: str, graded: Path) -> None:
    """Remove a submission's autograded scores and folder: the grader failed, not the student."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        gb.remove_submission(assignment, student)
    shutil.rmtree(graded, ignore_errors=True)


def grade_submission(
    course: Path, assignment: str, student: str, *, cell_timeout: int | None = None
) -> dict:
    """Autograde ``student``'s staged submission and write its grades and feedback."""
    start = time.perf_counter()
    course = Path(course).resolve()
    api = open_api(course)
    if cell_timeout is not None:
        api.config.Execute.timeout = cell_timeout
    graded = Path(api.coursedir.format_path("autograded", student, assignment))
    try:
        with_retries(
            lambda: api.autograde(assignment, student), f"autograde {assignment} {student}"
        )
    except CourseError as error:
        if "failed to validate" not in str(error):
            confirm_environment(api, course, assignment, student, graded)  # the grader's fault?
            raise
        replace_with_exercise(
            course,
            assignment,
            student,
            f"nbgrader could not grade {assignment}.ipynb: its graded cells do not match this "
            "assignment's (cells copied from another notebook, or their metadata edited).",
        )
        with_retries(
            lambda: api.autograde(assignment, student), f"autograde {assignment} {student}"
        )
    notes = json.loads(notes_path(course, assignment, student).read_text())
    notebook = graded / f"{assignment}.ipynb"
    if notebook.exists():
        if environment_errors(notebook):
            confirm_environment(api, course, assignment, student, graded)
        notes += execution_notes(notebook)

    from nbgrader.api import Gradebook

    held_out_accuracy, evidence = None, {}
    if assignment == accuracy.ASSIGNMENT:
        settings = json.loads((course / SETTINGS_FILE).read_text())
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            max_score = gb.find_grade(
                accuracy.GRADE_CELL, assignment, assignment, student
            ).max_score
        try:
            grade = accuracy.grade_accuracy(course, graded, max_score, settings["heldout_sha256"])
        except CourseError as error:  # the grader's held-out images, not the student's work
            undo_autograde(api, assignment, student, graded)
            raise EnvironmentBroken(str(error)) from error
        held_out_accuracy, evidence = grade.accuracy, grade.record()
        for attempt in range(LOCK_RETRIES):
            try:
                with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
                    accuracy.write_grade(gb, assignment, student, grade)
                break
            except Exception as error:  # sqlalchemy OperationalError: database is locked
                if "locked" not in str(error) or attempt == LOCK_RETRIES - 1:
                    raise
                time.sleep(0.5 * 2**attempt)
    write_json_atomic(graded / NOTES_FILE, notes)
    with_retries(
        lambda: api.generate_feedback(assignment, student), f"feedback {assignment} {student}"
    )
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        score, max_score = submission.score, submission.max_score
    return {
        "student": student,
        "assignment": assignment,
        "score": score,
        "max_score": max_score,
        "notes": notes,
        "held_out_accuracy": held_out_accuracy,
        "handin_evidence": evidence,
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("course", type=Path)
    parser.add_argument("assignment")
    parser.add_argument("student")
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--cell-timeout", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    apply_course_environment(args.course.resolve())
    status = 0
    try:
        result = grade_submission(
            args.course, args.assignment, args.student, cell_timeout=args.cell_timeout
        )
    except EnvironmentBroken as error:
        result, status = (
            {"student": args.student, "environment_error": str(error)},
            ENVIRONMENT_EXIT,
        )
    except CourseError as error:
        result, status = {"student": args.student, "error": str(error)}, 1
    write_json_atomic(args.result, result)
    return status


if __name__ == "__main__":
    sys.exit(main())
