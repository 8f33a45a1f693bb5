"""The gradebook as CSV, by nbgrader's own ``nbgrader export``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tlcourse.grading.grade.course import CourseError, scripts_on_path


def export_csv(course: Path, path: Path) -> Path:
    """Write every student's score per assignment to ``path`` (nbgrader's CSV exporter)."""
    scripts_on_path()
    path = Path(path).resolve()
    partial = path.with_name(f".{path.name}.partial")
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--to={partial}"],
        cwd=course,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not partial.is_file():
        raise CourseError(f"nbgrader export failed:\n{done.stdout}\n{done.stderr}")
    os.replace(partial, path)  # the old CSV or the whole new one, never half of it
    return path
