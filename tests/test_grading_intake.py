"""Intake, the budget and the checks, without running notebooks (fast)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tlcourse.grading.grade.course import ASSIGNMENTS
from tlcourse.grading.grade.intake import find_submissions, grade_ids, notes_path, stage
from tlcourse.grading.student import checks
from tlcourse.grading.student.budget import BUDGET_ENV, SEED_ENV, current_budget

PROJECT_ROOT = Path(__file__).resolve().parents[1]
A = "01-preprocessing"


@pytest.fixture
def course(tmp_path) -> Path:
    """The folders intake reads: source/ (solutions) and release/ (exercises)."""
    root = tmp_path / "course"
    for a in ASSIGNMENTS:
        shutil.copytree(PROJECT_ROOT / "solutions" / a, root / "source" / a)
        shutil.copytree(PROJECT_ROOT / "exercises" / a, root / "release" / a)
    return root


def _zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def test_zip_folder_gives_student_ids_and_flattens_member_paths(course, tmp_path):
    zips = tmp_path / "lms"
    zips.mkdir()
    solution = (PROJECT_ROOT / "solutions" / A / f"{A}.ipynb").read_text()
    _zip(zips / "ada.lovelace.zip", {f"../../{A}.ipynb": solution, "model.weights.h5": b"x"})
    found = find_submissions(zips, A).students
    assert list(found) == ["ada.lovelace"]
    submission = stage(course, A, "ada.lovelace", found["ada.lovelace"])
    staged = course / "submitted" / "ada.lovelace" / A
    assert sorted(p.name for p in staged.iterdir()) == [f"{A}.ipynb"]
    assert not (tmp_path / f"{A}.ipynb").exists()
    assert any("Removed the submitted model.weights.h5" in n for n in submission.notes)
    assert json.loads(notes_path(course, A, "ada.lovelace").read_text()) == submission.notes


def test_renamed_notebook_is_graded_under_its_name(course, tmp_path):
    folder = tmp_path / "submitted" / "bob" / A
    folder.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / A / f"{A}.ipynb", folder / "mine.ipynb")
    submission = stage(
        course, A, "bob", find_submissions(tmp_path / "submitted", A).students["bob"]
    )
    staged = course / "submitted" / "bob" / A / f"{A}.ipynb"
    assert grade_ids(staged) == grade_ids(PROJECT_ROOT / "solutions" / A / f"{A}.ipynb")
    assert "was named mine.ipynb" in submission.notes[0]


#: File and folder names as LMS exports give them, and the student id each must become.
LMS_NAMES = {
    "ann_lee.zip": "ann_lee",  # <student>.zip: the whole name, underscores kept
    "ann_kim.zip": "ann_kim",
    "leeann_12345_67890_01-preprocessing.zip": "leeann-12345",  # Canvas
    "leeann_LATE_12346_67891_01-preprocessing-1.zip": "leeann-12346",  # Canvas, late
    "Ann Lee_123456_assignsubmission_file_01-preprocessing.zip": "Ann-Lee-123456",  # Moodle
    "Ann Lee_123457_assignsubmission_file_/": "Ann-Lee-123457",  # Moodle, a folder
    "01-preprocessing_annkim_attempt_2026-11-30-22-15-03_nb.zip": "annkim",  # Blackboard
    "José Núñez.zip": "Jos-N-ez",
}


def test_lms_file_names_give_one_student_id_each_by_an_explicit_rule(tmp_path):
    solution = (PROJECT_ROOT / "solutions" / A / f"{A}.ipynb").read_text()
    for name in LMS_NAMES:
        if name.endswith("/"):
            (tmp_path / name / "work").mkdir(parents=True)
            (tmp_path / name / "work" / f"{A}.ipynb").write_text(solution)
        else:
            _zip(tmp_path / name, {f"{A}.ipynb": solution})
    intake = find_submissions(tmp_path, A)
    ids = {source.name: student for student, source in intake.students.items()}
    assert ids == {name.rstrip("/"): student for name, student in LMS_NAMES.items()}
    assert intake.rules["leeann-12345"] == "Canvas"
    assert intake.rules["ann_lee"] == "<student>.zip" and not intake.rejected


def test_folders_with_underscores_are_students_verbatim_and_strays_are_named(tmp_path):
    for student in ("ann_lee", "ann_kim", "patch_1", "patch_2", "patch_3"):
        (tmp_path / student / A).mkdir(parents=True)
    (tmp_path / "carl" / "02-freezing").mkdir(parents=True)  # another assignment: not ours
    (tmp_path / "dora").mkdir()  # notebooks at the wrong depth: named, not dropped
    (tmp_path / "dora" / f"{A}.ipynb").write_text("{}")
    (tmp_path / ".DS_Store").write_text("")
    for glob in ("ann*", "[ab]c", "ann,bob", " ann"):  # nbgrader would read these as patterns
        (tmp_path / glob / A).mkdir(parents=True)
    intake = find_submissions(tmp_path, A)
    assert sorted(intake.students) == ["ann_kim", "ann_lee", "patch_1", "patch_2", "patch_3"]
    assert sorted(intake.rejected) == [" ann", "[ab]c", "ann*", "ann,bob", "dora"]
    assert "dora/01-preprocessing/" in intake.rejected["dora"]
    assert "cannot be a student id" in intake.rejected["ann*"]
    assert sorted(intake.ignored) == [".DS_Store", "carl"]


def test_two_submissions_with_one_id_are_refused_naming_both(tmp_path):
    from tlcourse.grading.grade.course import CourseError

    _zip(tmp_path / "ann_lee.zip", {f"{A}.ipynb": "{}"})
    (tmp_path / "ann_lee" / A).mkdir(parents=True)
    with pytest.raises(CourseError, match=r"ann_lee/01-preprocessing .*and ann_lee\.zip"):
        find_submissions(tmp_path, A)
    other = tmp_path / "canvas"
    other.mkdir()
    _zip(other / "leeann_12345_1_a.zip", {f"{A}.ipynb": "{}"})
    _zip(other / "leeann_LATE_12345_2_a.zip", {f"{A}.ipynb": "{}"})
    with pytest.raises(CourseError, match="leeann_12345_1_a.zip .*leeann_LATE_12345_2_a.zip"):
        find_submissions(other, A)


def test_corrupt_notebook_is_replaced_by_the_exercise(course, tmp_path):
    zips = tmp_path / "lms"
    zips.mkdir()
    _zip(zips / "carol.zip", {f"{A}.ipynb": '{"cells": ['})
    submission = stage(course, A, "carol", zips / "carol.zip")
    staged = course / "submitted" / "carol" / A / f"{A}.ipynb"
    assert staged.read_bytes() == (PROJECT_ROOT / "exercises" / A / f"{A}.ipynb").read_bytes()
    assert "could not be read as a notebook" in submission.notes[0]
    assert "unmodified exercise (0 points)" in submission.notes[-1]


def test_no_submissions_is_an_error_that_says_the_layout(tmp_path):
    with pytest.raises(Exception, match="submitted/ layout"):
        find_submissions(tmp_path, A)


def test_data_inside_the_course_is_refused_before_anything_is_written(
    tmp_path, weights_npz, cifar10_root
):
    from tlcourse.grading.grade.course import CourseError, init_course

    course = tmp_path / "course"
    inside = course / "weights.npz"
    course.mkdir()
    shutil.copy(weights_npz, inside)
    with pytest.raises(CourseError, match="outside it"):
        init_course(course, data=cifar10_root / "cifar-10-batches-py", weights=inside)
    assert sorted(p.name for p in course.iterdir()) == ["weights.npz"]


def test_budget_reads_the_environment(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.delenv(SEED_ENV, raising=False)
    grading = current_budget()
    assert (grading.name, grading.epochs, grading.train_per_class, grading.seed) == (
        "grading",
        4,
        300,
        0,
    )
    monkeypatch.setenv(BUDGET_ENV, "full")
    monkeypatch.setenv(SEED_ENV, "3")
    full = current_budget()
    assert (full.epochs, full.train_per_class, full.seed) == (30, None, 3)
    monkeypatch.setenv(BUDGET_ENV, "huge")
    with pytest.raises(ValueError, match="grading"):
        current_budget()


def test_checks_name_the_known_mistakes():
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    checks.check_unit_scaled(images.astype(np.float32) / 255, images)
    with pytest.raises(AssertionError, match="Known mistake: data not normalised"):
        checks.check_unit_scaled(images.astype(np.float32), images)
    with pytest.raises(AssertionError, match="Known mistake: labels not one-hot"):
        checks.check_one_hot(np.arange(4), np.arange(4))
    with pytest.raises(AssertionError, match="Known mistake: 1x1 feature maps at 32 px"):
        checks.check_image_size(32)
    checks.check_image_size(64)
    with pytest.raises(AssertionError, match="Known mistake: a collapsed run stuck at chance"):
        checks.check_not_collapsed({"loss": [2.3026], "accuracy": [0.1]})
    checks.check_not_collapsed({"loss": [1.6], "accuracy": [0.4]})


def test_another_assignments_notebook_is_named_and_replaced(course, tmp_path):
    folder = tmp_path / "submitted" / "dan" / A
    folder.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "solutions" / "02-freezing" / "02-freezing.ipynb", folder)
    submission = stage(course, A, "dan", folder)
    assert "02-freezing.ipynb is the notebook of assignment 02-freezing" in submission.notes[0]
    staged = course / "submitted" / "dan" / A / f"{A}.ipynb"
    assert staged.read_bytes() == (PROJECT_ROOT / "exercises" / A / f"{A}.ipynb").read_bytes()
