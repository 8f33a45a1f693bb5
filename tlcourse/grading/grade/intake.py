"""Submissions into the course's ``submitted/<student>/<assignment>/``, repaired where possible.

Two input layouts:

* nbgrader's ``submitted/`` layout: ``PATH/<student>/<assignment>/*.ipynb`` (plus any files);
* zip files (or folders) as an LMS exports them: ``PATH/<student>.zip``, or Canvas, Moodle
  and Blackboard names; notebooks anywhere inside (folders are flattened, nothing is
  extracted outside the submission).

Student ids follow :mod:`tlcourse.grading.grade.identity`: a folder name verbatim, a file name by
an explicit rule; two submissions with one id are refused.

Each submission is checked before nbgrader sees it. A notebook under another name that holds
this assignment's graded cells is renamed; a missing, unreadable or empty notebook, or another
assignment's notebook, is replaced by the released exercise (it scores 0 and the rest of the
class is graded as usual). Files the graded run writes for the grader (weights) are removed,
so only weights trained in the graded run are evaluated. Each repair is a note that appears
at the top of the student's feedback.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tlcourse.files import write_json_atomic
from tlcourse.grading.grade.course import ASSIGNMENTS, GRADER_DIR, CourseError
from tlcourse.grading.grade.folders import copy_regular_files, regular_files, remove_irregular
from tlcourse.grading.grade.identity import claim, folder_id_problem, lms_student, zip_student
from tlcourse.grading.grade.integrity import MAX_NOTEBOOK_BYTES, restore_graded_cells
from tlcourse.grading.student.handin import HANDIN_FILES

#: The note on a submission graded as the released exercise (what it sent cannot be graded).
EXERCISE_NOTE = "It was graded as the unmodified exercise (0 points)"
#: Largest file taken from a zip (a notebook with outputs; weights are not wanted).
MAX_MEMBER_BYTES = 50 * 2**20


@dataclass
class Submission:
    """One student's submission of one assignment, as staged in the course directory."""

    student: str
    assignment: str
    source: Path
    digest: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Intake:
    """What a submissions folder holds for one assignment, and what it holds that is not one.

    ``rejected`` maps each entry that looks like a submission but cannot be graded to why: the
    batch reports each one and exits non-zero. ``ignored`` lists what is plainly not a
    submission of this assignment (hidden files, another assignment's folders).
    """

    root: Path = Path()
    students: dict[str, Path] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _entry_kind(entry: Path, assignment: str) -> str:
    """``nbgrader``, ``lms-folder``, ``zip``, ``other-assignment``, ``hidden`` or ``unknown``."""
    if entry.name.startswith(".") or entry.name == "__MACOSX":
        return "hidden"
    if entry.is_file():
        return "zip" if entry.suffix.lower() == ".zip" else "unknown"
    if (entry / assignment).is_dir():
        return "nbgrader"
    if lms_student(entry.name) is not None:
        return "lms-folder"
    if any((entry / other).is_dir() for other in ASSIGNMENTS):
        return "other-assignment"
    return "unknown"


def find_submissions(path: str | Path, assignment: str) -> Intake:
    """Every submission of ``assignment`` under ``path``, by student id (see :mod:`.identity`).

    Raises ``CourseError`` when nothing there is a submission, or when two map to one id.
    """
    path = Path(path).resolve()
    if not path.is_dir():
        raise CourseError(f"{path} is not a folder of submissions.")
    intake, found = Intake(root=path), {}
    for entry in sorted(path.iterdir()):
        kind = _entry_kind(entry, assignment)
        if kind == "nbgrader" and (problem := folder_id_problem(entry.name)):
            intake.rejected[entry.name] = problem
        elif kind == "nbgrader":
            claim(found, entry.name, entry / assignment, "folder <student>/" + assignment, path)
        elif kind == "lms-folder":
            student, lms = lms_student(entry.name)
            claim(found, student, entry, f"{lms} folder", path)
        elif kind == "zip":
            student, rule = zip_student(entry.stem)
            claim(found, student, entry, rule, path)
        elif kind in ("hidden", "other-assignment"):
            intake.ignored.append(entry.name)
        else:
            intake.rejected[entry.name] = (
                f"not a submission of {assignment}: expected a folder "
                f"{entry.name}/{assignment}/ (nbgrader's layout) or a .zip file"
            )
    if not found:
        raise CourseError(
            f"No submissions of {assignment} in {path}: expected <student>/{assignment}/*.ipynb "
            "folders (nbgrader's submitted/ layout) or <student>.zip files (or an LMS export)."
        )
    intake.students = {student: source for student, (source, _) in found.items()}
    intake.rules = {student: rule for student, (_, rule) in found.items()}
    return intake


def digest_of(source: Path) -> str:
    """sha256 over a zip file or a folder's regular files (names and contents; no links)."""
    sha = hashlib.sha256()
    files = [source] if source.is_file() else regular_files(source)
    for file in files:
        sha.update(file.name.encode() + b"\0" + file.read_bytes())
    return sha.hexdigest()


def _copy_in(source: Path, dest: Path) -> list[str]:
    """Copy a zip's or folder's files into ``dest``; return notes on what was skipped."""
    notes = []
    if source.is_dir():
        in_place = source.resolve() == dest.resolve()  # grading COURSE/submitted itself
        skipped = remove_irregular(dest) if in_place else copy_regular_files(source, dest)
        if skipped:
            notes.append(
                f"Left out {', '.join(skipped[:5])}{' and more' if len(skipped) > 5 else ''}: "
                "a submission holds files; links and other special files are not graded."
            )
        return notes
    dest.mkdir(parents=True)
    try:
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                name = Path(info.filename).name
                if info.is_dir() or not name or info.filename.startswith("__MACOSX"):
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    notes.append(f"Skipped {name} from the zip: larger than 50 MiB.")
                    continue
                (dest / name).write_bytes(archive.read(info))
    except zipfile.BadZipFile:
        notes.append(f"{source.name} is not a readable zip file.")
    return notes


def grade_ids(path: Path) -> set[str]:
    """nbgrader grade ids in a notebook (empty when it cannot be read)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - any unreadable file simply holds no graded cells
        return set()
    return {
        c.metadata["nbgrader"]["grade_id"]
        for c in nb.cells
        if "grade_id" in c.get("metadata", {}).get("nbgrader", {})
    }


def _problem(path: Path, own_ids: set[str]) -> str | None:
    """Why the notebook at ``path`` cannot be graded as it is, or ``None``."""
    if (size := path.stat().st_size) > MAX_NOTEBOOK_BYTES:
        return (
            f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB "
            "a notebook may have (clear its outputs before submitting)"
        )
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 - the reason is reported, whatever it is
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return f"{path.name} could not be read as a notebook ({type(error).__name__}: {first})"
    if not grade_ids(path) & own_ids:
        return f"{path.name} holds none of this assignment's graded cells (an empty notebook?)"
    return None


def repair(dest: Path, assignment: str, release: Path, source_ids: dict[str, set[str]]) -> list:
    """Make ``dest/<assignment>.ipynb`` gradable; return the notes saying what was done."""
    notes = []
    for name in HANDIN_FILES:
        if (dest / name).exists():
            (dest / name).unlink()
            notes.append(
                f"Removed the submitted {name}: the grader evaluates the weights "
                "trained when your notebook runs in grading."
            )
    expected = dest / f"{assignment}.ipynb"
    others_ids = set().union(*(ids for a, ids in source_ids.items() if a != assignment))
    own_ids = source_ids[assignment] - others_ids  # ids such as "setup" recur across notebooks
    others = sorted(p for p in dest.glob("*.ipynb") if p != expected)
    if not expected.exists():
        mine = [p for p in others if grade_ids(p) & own_ids]
        if len(mine) == 1:
            mine[0].rename(expected)
            notes.append(
                f"Your notebook was named {mine[0].name}; it was graded as "
                f"{expected.name}. Keep the name the assignment gives."
            )
        else:
            for other in others:
                ids = grade_ids(other)
                owner = [
                    a
                    for a, a_ids in source_ids.items()
                    if a != assignment and ids & (a_ids - source_ids[assignment])
                ]
                if owner:
                    notes.append(
                        f"{other.name} is the notebook of assignment {owner[0]}, "
                        f"not of {assignment}."
                    )
            notes.append(f"No {expected.name} in the submission.")
    elif problem := _problem(expected, own_ids):
        notes.append(problem + ".")
    released = release / assignment / expected.name
    if notes and (not expected.exists() or _problem(expected, own_ids)):
        shutil.copy(released, expected)
        notes.append(f"{EXERCISE_NOTE}; resubmit a working notebook to be graded.")
        return notes
    nb = nbformat.read(expected, as_version=4)
    source = release.parent / "source" / assignment / expected.name
    restored = restore_graded_cells(
        nb,
        nbformat.read(released, as_version=4),
        nbformat.read(source, as_version=4) if source.is_file() else None,
    )
    if restored:
        nbformat.write(nb, expected)
    return notes + restored


def notes_path(course: Path, assignment: str, student: str) -> Path:
    return course / GRADER_DIR / "notes" / assignment / f"{student}.json"


def replace_with_exercise(course: Path, assignment: str, student: str, reason: str) -> list:
    """Grade the released exercise in place of a notebook nbgrader cannot grade; the notes."""
    name = f"{assignment}.ipynb"
    shutil.copy(course / "release" / assignment / name, course / "submitted" / student / assignment)
    path = notes_path(course, assignment, student)
    notes = json.loads(path.read_text()) if path.is_file() else []
    notes += [reason, f"{EXERCISE_NOTE}; resubmit a working notebook to be graded."]
    write_json_atomic(path, notes)
    return notes


def stage(course: Path, assignment: str, student: str, source: Path) -> Submission:
    """Copy one submission into ``course/submitted/`` and repair it; record its notes."""
    dest = course / "submitted" / student / assignment
    digest = digest_of(source)
    if dest.exists() and source.resolve() != dest.resolve():
        shutil.rmtree(dest)
    notes = _copy_in(source, dest)
    source_ids = {a: grade_ids(course / "source" / a / f"{a}.ipynb") for a in ASSIGNMENTS}
    notes += repair(dest, assignment, course / "release", source_ids)
    write_json_atomic(notes_path(course, assignment, student), notes)
    return Submission(student, assignment, source, digest, notes)
