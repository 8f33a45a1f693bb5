"""One graded course directory for the whole session (the grading tests share it).

It is made by ``init_course`` and graded by ``grade_class`` (what ``tlcourse grade`` runs),
through nbgrader: per assignment the solution, the unmodified exercise and the corpus of
wrong submissions (``autograder/tests/corpus``); assignment 1 also gets the bad inputs, as a
folder of LMS zip files, with a short per-cell timeout so that one of them times out.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("01-preprocessing", "02-freezing", "03-finetuning")
#: Per-cell limit for assignment 1's batch: its slowest cell takes seconds; `timeout` sleeps.
BAD_INPUT_CELL_TIMEOUT = 40


def solution(assignment: str) -> Path:
    return PROJECT_ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def exercise(assignment: str) -> Path:
    return PROJECT_ROOT / "exercises" / assignment / f"{assignment}.ipynb"


def _with_cell(assignment: str, grade_id: str, edit) -> str:
    nb = nbformat.read(solution(assignment), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = edit(cell.source)
    return nbformat.writes(nb)


def bad_inputs() -> dict[str, dict[str, str | bytes]]:
    """``{student: {file name in the zip: content}}`` for assignment 1's bad inputs."""
    a = "01-preprocessing"
    name = f"{a}.ipynb"
    return {
        "error-cell": {
            name: _with_cell(a, "encode_labels", lambda s: "CLASSES = len(CIFAR10_CLASS)\n" + s)
        },
        "timeout": {
            name: _with_cell(a, "standardize", lambda s: "import time\ntime.sleep(600)\n" + s)
        },
        "empty": {name: nbformat.writes(nbformat.v4.new_notebook())},
        "renamed": {f"work/{a} (1).ipynb": solution(a).read_text()},
        "other-assignment": {"02-freezing.ipynb": solution("02-freezing").read_text()},
        "corrupt": {name: solution(a).read_text()[:1000]},
    }


#: Bad input -> (expected score of 10, text its feedback notes must hold).
BAD_INPUT_EXPECTED = {
    "error-cell": (8, "raised NameError: name 'CIFAR10_CLASS' is not defined"),
    "timeout": (8, "was stopped: it ran longer than the per-cell time limit"),
    "empty": (0, "holds none of this assignment's graded cells"),
    "renamed": (10, "was named 01-preprocessing (1).ipynb"),
    "other-assignment": (0, "is the notebook of assignment 02-freezing"),
    "corrupt": (0, "could not be read as a notebook"),
}


@dataclass
class GradedCourse:
    path: Path
    submissions: dict[str, Path]
    results: dict[str, object]

    def grade(self, assignment: str, student: str, cell: str) -> tuple[float, float]:
        """(score, max score) of one grade cell, from nbgrader's gradebook."""
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}", "tlcourse") as gb:
            grade = gb.find_grade(cell, assignment, assignment, student)
            return grade.score, grade.max_score

    def total(self, assignment: str, student: str) -> tuple[float, float]:
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}", "tlcourse") as gb:
            sub = gb.find_submission(assignment, student)
            return sub.score, sub.max_score

    def feedback(self, assignment: str, student: str) -> str:
        import html

        path = self.path / "feedback" / student / assignment / f"{assignment}.html"
        return html.unescape(path.read_text())


def _write_submissions(root: Path) -> dict[str, Path]:
    from corpus.mistakes import MISTAKES, apply

    folders = {}
    for a in ASSIGNMENTS[1:]:
        folder = root / a
        students = [("sol", solution(a)), ("blank", exercise(a))]
        if a == ASSIGNMENTS[2]:  # graded twice in one batch: the same grade (deterministic)
            students.append(("sol-again", solution(a)))
        for student, source in students:
            (folder / student / a).mkdir(parents=True)
            (folder / student / a / source.name).write_bytes(source.read_bytes())
        for mistake in MISTAKES:
            if mistake.assignment == a:
                apply(mistake, solution(a), folder / mistake.name / a / f"{a}.ipynb")
        folders[a] = folder
    a = ASSIGNMENTS[0]
    zips = root / a
    zips.mkdir()
    entries = {"sol": {f"{a}.ipynb": solution(a).read_text()}}
    entries["blank"] = {f"{a}.ipynb": exercise(a).read_text()}
    scratch = root / "scratch"
    for mistake in MISTAKES:
        if mistake.assignment == a:
            text = apply(mistake, solution(a), scratch / mistake.name / f"{a}.ipynb").read_text()
            entries[mistake.name] = {f"{a}.ipynb": text}
    entries.update(bad_inputs())
    for student, files in entries.items():
        with zipfile.ZipFile(zips / f"{student}.zip", "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
    folders[a] = zips
    return folders


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory, cifar10_root: Path, weights_npz: Path) -> GradedCourse:
    """The course made and graded as the README says: its variables exported as relative paths
    (from the folder ``course init`` runs in), the batch started in another folder, where
    those relative paths point at nothing; kernels import tlcourse as installed."""
    import sys

    sys.path.insert(0, str(PROJECT_ROOT / "autograder" / "tests"))
    from tlcourse.grading.grade.course import init_course
    from tlcourse.grading.grade.pool import grade_class

    root = tmp_path_factory.mktemp("grading")
    (root / "elsewhere").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TLCOURSE_CACHE", str(root / "cache"))
        env.chdir(PROJECT_ROOT)
        env.setenv("TLCOURSE_DATA", os.path.relpath(cifar10_root / "cifar-10-batches-py"))
        env.setenv("TLCOURSE_WEIGHTS", os.path.relpath(weights_npz))
        course = init_course(root / "course")
        submissions = _write_submissions(root / "submissions")
        env.chdir(root / "elsewhere")
        results = {
            a: grade_class(
                course,
                a,
                submissions[a],
                workers=2,
                cell_timeout=BAD_INPUT_CELL_TIMEOUT if a == ASSIGNMENTS[0] else None,
                progress=False,
                log=lambda _: None,
            )
            for a in ASSIGNMENTS
        }
    (root / "results.json").write_text(
        json.dumps({a: r.graded for a, r in results.items()}, indent=2)
    )
    return GradedCourse(course, submissions, results)


@pytest.fixture(scope="session")
def fresh_course(tmp_path_factory, cifar10_root: Path, weights_npz: Path) -> Path:
    """A course nobody was graded in yet (tests grade a copy of it)."""
    from tlcourse.grading.grade.course import init_course

    root = tmp_path_factory.mktemp("fresh-course")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TLCOURSE_CACHE", str(root / "cache"))
        return init_course(
            root / "course", data=cifar10_root / "cifar-10-batches-py", weights=weights_npz
        )
