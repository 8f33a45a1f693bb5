"""The student notebooks in ``exercises/``, generated from ``solutions/`` by nbgrader.

nbgrader's own ``generate_assignment`` runs in a temporary course directory (the course's
configuration, ``source/`` = ``solutions/``); its release versions are copied to
``exercises/<assignment>/``. :func:`stale_exercises` says which committed files differ from a
fresh build, so CI fails when someone edits a solution and forgets to rebuild.
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from tlcourse.grading.grade.course import ASSIGNMENTS, CONFIG_FILE, generate, repo_root


def _release(build: Path, root: Path) -> Path:
    """Generate every assignment in a course under ``build``; return its ``release/``."""
    course = build / "course"
    course.mkdir()
    shutil.copy(root / "autograder" / CONFIG_FILE, course / CONFIG_FILE)
    for name in ASSIGNMENTS:
        shutil.copytree(root / "solutions" / name, course / "source" / name)
    generate(course)
    return course / "release"


def build_exercises(root: Path | None = None) -> list[Path]:
    """Regenerate ``exercises/`` from ``solutions/``; return the files written."""
    root = root or repo_root()
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        release = _release(Path(tmp), root)
        for name in ASSIGNMENTS:
            target = root / "exercises" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / name, target)
            written += sorted(p for p in target.rglob("*") if p.is_file())
    return written


def stale_exercises(root: Path | None = None) -> list[str]:
    """Files of ``exercises/`` that differ from a fresh build (missing and extra ones too)."""
    root = root or repo_root()
    with tempfile.TemporaryDirectory() as tmp:
        release = _release(Path(tmp), root)
        fresh = {p.relative_to(release) for p in release.rglob("*") if p.is_file()}
        committed_root = root / "exercises"
        committed = {
            p.relative_to(committed_root) for p in committed_root.rglob("*") if p.is_file()
        }
        stale = sorted(str(p) for p in fresh ^ committed)
        for rel in sorted(fresh & committed):
            if not filecmp.cmp(release / rel, committed_root / rel, shallow=False):
                stale.append(str(rel))
    return stale
