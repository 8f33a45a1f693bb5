"""``exercises/`` is nbgrader's release of ``solutions/``, and a stale copy is detected."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from click.testing import CliRunner

from tlcourse.cli import main
from tlcourse.grading.exercises import stale_exercises

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_exercises_are_in_sync_with_solutions():
    result = CliRunner().invoke(main, ["exercises", "build", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_exercises_hold_no_solution_and_no_hidden_test():
    for notebook in sorted((PROJECT_ROOT / "exercises").glob("*/*.ipynb")):
        text = notebook.read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
        assert "raise NotImplementedError()" in text, notebook


def test_an_edited_solution_makes_the_exercises_stale(tmp_path):
    for folder in ("solutions", "exercises", "autograder"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
    path = tmp_path / "solutions" / "01-preprocessing" / "01-preprocessing.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nOne more sentence."
    nbformat.write(nb, path)
    assert stale_exercises(tmp_path) == ["01-preprocessing/01-preprocessing.ipynb"]
