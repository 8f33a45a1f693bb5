"""Grade a class: intake, one process per submission in parallel workers, feedback, CSV.

Resumable: a graded submission leaves ``grader/done/<assignment>/<student>.json`` with the
sha256 of what was submitted; a rerun skips those whose files did not change, so they keep
the grades they have. A submission that fails to grade is reported and does not stop the
others.

Kill-safe: every file the batch writes appears whole or not at all (written aside, then
renamed), nbgrader's gradebook is SQLite (transactions), and a grading process dies with the
batch. A batch killed at any point (Ctrl-C, SIGKILL) and run again ends with the grades an
uninterrupted run gives: what was not recorded done is graded again from scratch.

The instructor's report, ``grader/reports/<assignment>.json``, lists every student's score,
time and notes, and flags identical submissions.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading.course import GRADER_DIR, check_assignment, check_course
from tlcourse.grading.export import export_csv
from tlcourse.grading.intake import (
    EXERCISE_NOTE,
    digest_of,
    find_submissions,
    notes_path,
    stage,
)


@dataclass
class BatchResult:
    graded: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    csv: Path | None = None
    report: Path | None = None
    seconds: float = 0.0


def report_path(course: Path, assignment: str) -> Path:
    return course / GRADER_DIR / "reports" / f"{assignment}.json"


def identical_submissions(course: Path, assignment: str, students: list[str]) -> dict:
    """``{student: [others who submitted the same notebook]}``, for students who share one.

    A notebook the grader replaced by the exercise (unreadable, missing) is nobody's work and
    is not compared.
    """
    owners: dict[str, list[str]] = {}
    for student in students:
        notebook = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        notes = notes_path(course, assignment, student)
        if notes.is_file() and any(EXERCISE_NOTE in n for n in json.loads(notes.read_text())):
            continue
        if notebook.is_file():
            digest = hashlib.sha256(notebook.read_bytes()).hexdigest()
            owners.setdefault(digest, []).append(student)
    return {
        student: [other for other in group if other != student]
        for group in owners.values()
        if len(group) > 1
        for student in group
    }


def write_report(course: Path, assignment: str, students: list[str], failed: dict) -> Path:
    """The instructor's report: each student's score, time and notes; identical files flagged."""
    same = identical_submissions(course, assignment, students)
    rows = {}
    for student in students:
        path = done_path(course, assignment, student)
        record = json.loads(path.read_text()) if path.is_file() else {}
        rows[student] = {
            "score": record.get("score"),
            "max_score": record.get("max_score"),
            "seconds": record.get("seconds"),
            "notes": record.get("notes", []),
            "not_graded": failed.get(student),
            "identical_to": same.get(student, []),
        }
    path = report_path(course, assignment)
    write_atomic(path, json.dumps({"assignment": assignment, "students": rows}, indent=2) + "\n")
    return path


#: A grading process still running after this long is stopped (cells have their own limit).
SUBMISSION_WALL_SECONDS = 1800


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that it is either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def _die_with_parent() -> None:
    """In a grading process: be killed when the batch dies, whatever kills it."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def done_path(course: Path, assignment: str, student: str) -> Path:
    return course / GRADER_DIR / "done" / assignment / f"{student}.json"


def is_done(course: Path, assignment: str, student: str, digest: str) -> bool:
    path = done_path(course, assignment, student)
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    feedback = course / "feedback" / student / assignment / f"{assignment}.html"
    return digest in record.get("digests", []) and feedback.is_file()


def run_one(
    course: Path,
    assignment: str,
    student: str,
    cell_timeout: int | None,
    running: set | None = None,
) -> dict:
    """Grade one staged submission in a fresh Python process; its JSON result.

    ``running`` holds the processes under way, so that an interrupted batch can stop them.
    """
    command = [sys.executable, "-m", "tlcourse.grading.submission", str(course), assignment]
    command += [student] + ([f"--cell-timeout={cell_timeout}"] if cell_timeout else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the batch, which stops its graders itself
        preexec_fn=_die_with_parent,
    )
    if running is not None:
        running.add(process)
    try:
        stdout, stderr = process.communicate(timeout=SUBMISSION_WALL_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise RuntimeError(
            f"grading took over {SUBMISSION_WALL_SECONDS} s and was stopped"
        ) from None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        if running is not None:
            running.discard(process)
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
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
    running: set[subprocess.Popen] = set()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with tqdm(total=len(todo), unit="notebook", disable=not progress, desc=assignment) as bar:
            futures = {
                pool.submit(run_one, course, assignment, student, cell_timeout, running): (
                    student,
                    digests,
                )
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
                    write_atomic(
                        done_path(course, assignment, student), json.dumps(record, indent=2) + "\n"
                    )
                bar.update(1)
    except BaseException:  # Ctrl-C: stop the graders now; a rerun grades what was not done
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(running):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        raise
    pool.shutdown()
    students = sorted({*result.skipped, *(student for student, _ in todo)})
    result.report = write_report(course, assignment, students, result.failed)
    result.csv = export_csv(course, Path(csv) if csv else course / "grades.csv")
    result.seconds = time.perf_counter() - start
    return result
