"""Grade a class: intake, one process per submission in parallel workers, feedback, CSV.

Resumable: a graded submission leaves ``grader/done/<assignment>/<student>.json`` with the
sha256 of what was submitted; a rerun skips those whose files did not change, so they keep
the grades they have. A submission that fails to grade is reported and does not stop the
others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading.course import GRADER_DIR, check_assignment, check_course
from tlcourse.grading.export import export_csv
from tlcourse.grading.intake import digest_of, find_submissions, stage


@dataclass
class BatchResult:
    graded: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    csv: Path | None = None
    seconds: float = 0.0


def done_path(course: Path, assignment: str, student: str) -> Path:
    return course / GRADER_DIR / "done" / assignment / f"{student}.json"


def is_done(course: Path, assignment: str, student: str, digest: str) -> bool:
    path = done_path(course, assignment, student)
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    feedback = course / "feedback" / student / assignment / f"{assignment}.html"
    return digest in record.get("digests", []) and feedback.is_file()


def run_one(course: Path, assignment: str, student: str, cell_timeout: int | None) -> dict:
    """Grade one staged submission in a fresh Python process; its JSON result."""
    command = [sys.executable, "-m", "tlcourse.grading.submission", str(course), assignment]
    command += [student] + ([f"--cell-timeout={cell_timeout}"] if cell_timeout else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0 or "error" in result or not result:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(result.get("error") or f"grading process failed:\n{tail}")
    return result


def grade_class(
    course: str | os.PathLike,
    assignment: str,
    submissions: str | os.PathLike,
    *,
    workers: int = 2,
    cell_timeout: int | None = None,
    csv: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> BatchResult:
    """Grade every submission of ``assignment`` under ``submissions`` into ``course``."""
    from tqdm import tqdm

    start = time.perf_counter()
    course = check_course(course)
    check_assignment(assignment)
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1. Received: workers={workers}")
    result = BatchResult()
    todo = []
    for student, source in find_submissions(submissions, assignment).items():
        digest = digest_of(source)
        if is_done(course, assignment, student, digest):
            result.skipped.append(student)
            continue
        staged = stage(course, assignment, student, source)
        after = digest_of(source) if source.is_dir() else digest
        todo.append((student, sorted({digest, after, staged.digest})))
    if result.skipped:
        log(f"{len(result.skipped)} already graded and unchanged: skipped.")
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(todo), unit="notebook", disable=not progress, desc=assignment) as bar,
    ):
        futures = {
            pool.submit(run_one, course, assignment, student, cell_timeout): (student, digests)
            for student, digests in todo
        }
        for future in as_completed(futures):
            student, digests = futures[future]
            try:
                graded = future.result()
            except Exception as error:  # noqa: BLE001 - one failure never stops the class
                result.failed[student] = str(error)
                log(f"{student}: not graded: {error}")
            else:
                result.graded.append(graded)
                record = {**graded, "digests": digests}
                path = done_path(course, assignment, student)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record, indent=2) + "\n")
            bar.update(1)
    result.csv = export_csv(course, Path(csv) if csv else course / "grades.csv")
    result.seconds = time.perf_counter() - start
    return result
