"""Which student a submission belongs to: the one rule for each input layout.

* nbgrader's layout, ``PATH/<student>/<assignment>/``: the folder name is the student id,
  verbatim (``ann_lee`` is ``ann_lee``).
* Files (zips) and folders as a learning-management system exports them: the first rule of
  :data:`LMS_RULES` whose pattern matches the name (without ``.zip``) gives the id:

  - Canvas: ``leeann_12345_67890_hw1.zip`` or ``leeann_LATE_12345_67890_hw1.zip`` is
    ``leeann-12345`` (name and Canvas user id);
  - Moodle: ``Ann Lee_123456_assignsubmission_file_hw1.zip``, or a folder so named, is
    ``Ann-Lee-123456`` (name and participant id);
  - Blackboard: ``hw1_annlee_attempt_2026-11-30-22-15-03_hw1.zip`` is ``annlee``.

  Any other zip is ``<student>.zip``: its whole name is the id (``ann_lee.zip`` is
  ``ann_lee``). Canvas and Moodle ids keep the LMS's numeric user id, so two students with
  one name stay two.

Ids from file names keep letters, digits, ``.``, ``_`` and ``-``; any other run of characters
becomes ``-``. Two submissions with one id are refused, naming both (:func:`claim`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tlcourse.grading.grade.course import CourseError


@dataclass(frozen=True)
class NamingRule:
    """How one LMS names its exported files: a pattern and the id made from its groups."""

    lms: str
    pattern: re.Pattern
    student: str


LMS_RULES: tuple[NamingRule, ...] = (
    NamingRule(
        "Canvas",
        re.compile(
            r"^(?P<name>[^_]+)(?:_LATE)?_(?P<user>\d+)_(?P<submission>\d+)(?:_(?P<file>.*))?$"
        ),
        "{name}-{user}",
    ),
    NamingRule(
        "Moodle",
        re.compile(r"^(?P<name>.+?)_(?P<user>\d+)_assignsubmission_[a-z]+_(?P<file>.*)$"),
        "{name}-{user}",
    ),
    NamingRule(
        "Blackboard",
        re.compile(
            r"^(?P<assignment>.+)_(?P<user>[^_]+)_attempt_"
            r"(?P<time>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:_(?P<file>.*))?$"
        ),
        "{user}",
    ),
)


#: Characters nbgrader reads as a glob or a list in a student id (``*`` would grade others).
NBGRADER_UNSAFE = re.compile(r"[*?\[\],+/\\]")


def folder_id_problem(name: str) -> str | None:
    """Why the folder name ``name`` cannot be a student id verbatim, or ``None``."""
    if name != name.strip() or NBGRADER_UNSAFE.search(name):
        return (
            f"the folder name {name!r} cannot be a student id: nbgrader reads * ? [ ] , + / \\ "
            "and surrounding spaces as patterns or lists. Rename the folder to the student's id"
        )
    return None


def safe_id(text: str, source: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``._-`` as ``-``."""
    sid = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not sid:
        raise CourseError(
            f"Cannot make a student id from {source!r}: rename it to <student>.zip, where "
            "<student> is the student's id (letters, digits, '.', '_', '-')."
        )
    return sid


def lms_student(name: str) -> tuple[str, str] | None:
    """(student id, LMS) when ``name`` (no ``.zip``) follows an LMS's naming, else ``None``."""
    for rule in LMS_RULES:
        match = rule.pattern.match(name)
        if match:
            return safe_id(rule.student.format(**match.groupdict()), name), rule.lms
    return None


def zip_student(stem: str) -> tuple[str, str]:
    """(student id, rule) of a zip named ``stem`` + ``.zip``."""
    return lms_student(stem) or (safe_id(stem, stem + ".zip"), "<student>.zip")


def claim(found: dict, student: str, source: Path, rule: str, root: Path) -> None:
    """Give ``source`` to ``student`` in ``found``; refuse a second submission with that id."""
    if student in found:
        first, first_rule = found[student]
        raise CourseError(
            f"Two submissions belong to the student id {student!r}: {first.relative_to(root)} "
            f"({first_rule}) and {source.relative_to(root)} ({rule}), in {root}. Nothing was "
            "graded. Keep only the one to grade in the submissions folder, or rename the other "
            "to <student>.zip with its own id."
        )
    found[student] = (source, rule)
