"""The gradebook as CSV, by nbgrader's own ``nbgrader export``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tlcourse.grading.course import CourseError, scripts_on_path


def export_csv(course: Path, path: Path) -> Path:
    """Write every student's score per assignment to ``path`` (nbgrader's CSV exporter)."""
    scripts_on_path()
    path = Path(path).resolve()
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--to={path}"],
        cwd=course,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not path.is_file():
        raise CourseError(f"nbgrader export failed:\n{done.stdout}\n{done.stderr}")
    return path
