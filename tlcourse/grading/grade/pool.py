"""Grade a class: intake, one process per submission in parallel workers, feedback, CSV.

Pre-flight first: before anyone is graded, one kernel in the students' sandbox checks the
grader's environment (:mod:`~tlcourse.grading.grade.preflight`); when it is broken nobody is graded
and the batch stops with the cause and its fix. Students' code runs only in the bubblewrap
sandbox (:mod:`~tlcourse.grading.sandbox`): where it cannot start, nobody is graded unless the
instructor asks for no isolation (``unsandboxed``), which every grade's provenance records. A
set-up cell that fails the same way during the batch stops it too, and that submission keeps
no grade: an error of the grader is never a student's 0.

Resumable: a graded submission leaves ``grader/done/<assignment>/<student>.json`` with the
sha256 of what was submitted; a rerun skips those whose files did not change, so they keep
the grades they have (``regrade`` grades them again). A submission that fails to grade is
reported, does not stop the others, and makes the batch's result a failure.

Kill-safe: every file the batch writes appears whole or not at all (written aside, then
renamed), nbgrader's gradebook is SQLite (transactions), and a grading process dies with the
batch. A batch killed at any point (Ctrl-C, SIGKILL) and run again ends with the grades an
uninterrupted run gives: what was not recorded done is graded again from scratch.

The instructor's report, ``grader/reports/<assignment>.json``, accumulates over batches: one
row per student with the latest grade, its provenance (tlcourse version and commit, data and
weights sha256, grading budget and seed, what the sandbox enforced, time) and the history of
earlier grades; identical submissions are flagged across the whole class.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.files import write_json_atomic
from tlcourse.grading.grade.course import (
    GRADER_DIR,
    CourseError,
    check_assignment,
    check_course,
    course_environment,
    read_settings,
)
from tlcourse.grading.grade.export import export_csv
from tlcourse.grading.grade.intake import (
    EXERCISE_NOTE,
    Intake,
    digest_of,
    find_submissions,
    notes_path,
    stage,
)
from tlcourse.grading.grade.preflight import (
    GradingEnvironmentError,
    check_environment,
    sandbox_environment,
)
from tlcourse.hub import sha256sum
from tlcourse.provenance import now_utc


@dataclass
class BatchResult:
    graded: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Students (or entries of the submissions folder) not graded, and why.
    failed: dict[str, str] = field(default_factory=dict)
    csv: Path | None = None
    report: Path | None = None
    seconds: float = 0.0
    #: What isolated the kernels of this batch (the pre-flight's ``isolation``).
    isolation: dict = field(default_factory=dict)


class EnvironmentFailure(RuntimeError):
    """A grading process found the grader's environment broken (its message says the fix)."""


#: A grading process still running after this long is stopped (cells have their own limit).
SUBMISSION_WALL_SECONDS = 1800


def report_path(course: Path, assignment: str) -> Path:
    return course / GRADER_DIR / "reports" / f"{assignment}.json"


def done_path(course: Path, assignment: str, student: str) -> Path:
    return course / GRADER_DIR / "done" / assignment / f"{student}.json"


def done_records(course: Path, assignment: str) -> dict[str, dict]:
    """``{student: done record}`` of every submission of ``assignment`` ever graded."""
    records = {}
    for path in sorted((course / GRADER_DIR / "done" / assignment).glob("*.json")):
        record = json.loads(path.read_text())
        records[record.get("student", path.stem)] = record
    return records


def is_done(course: Path, assignment: str, student: str, digest: str) -> bool:
    path = done_path(course, assignment, student)
    if not path.is_file():
        return False
    record = json.loads(path.read_text())
    feedback = course / "feedback" / student / assignment / f"{assignment}.html"
    return digest in record.get("digests", []) and feedback.is_file()


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
            owners.setdefault(sha256sum(notebook), []).append(student)
    return {
        student: [other for other in group if other != student]
        for group in owners.values()
        if len(group) > 1
        for student in group
    }


def write_report(course: Path, assignment: str, failed: dict, rejected: dict) -> Path:
    """The instructor's report: every student ever graded (latest grade, history, provenance),
    this batch's failures, identical submissions across the whole class."""
    path = report_path(course, assignment)
    rows = json.loads(path.read_text())["students"] if path.is_file() else {}
    records = done_records(course, assignment)
    same = identical_submissions(course, assignment, sorted(records))
    for student, record in records.items():
        rows[student] = {
            "score": record.get("score"),
            "max_score": record.get("max_score"),
            "held_out_accuracy": record.get("held_out_accuracy"),
            "handin_evidence": record.get("handin_evidence", {}),
            "seconds": record.get("seconds"),
            "notes": record.get("notes", []),
            "source": record.get("source"),
            "graded_at": record.get("graded_at"),
            "provenance": record.get("provenance"),
            "history": record.get("history", []),
            "not_graded": None,
            "identical_to": same.get(student, []),
        }
    for student, reason in failed.items():
        if student in rejected:
            continue
        rows.setdefault(student, {"score": None, "max_score": None, "notes": [], "history": []})
        rows[student].update(not_graded=reason, identical_to=same.get(student, []))
    report = {
        "assignment": assignment,
        "students": dict(sorted(rows.items())),
        "rejected_in_last_batch": rejected,
    }
    write_json_atomic(path, report)
    return path


def batch_provenance(course: Path, preflight: dict, cell_timeout: int | None) -> dict:
    """What every grade of this batch was made with."""
    from importlib import metadata

    from tlcourse.grading.student.budget import current_budget
    from tlcourse.provenance import git_commit, sha256_of

    environment = course_environment(course)
    budget = current_budget()
    return {
        "tlcourse": metadata.version("tlcourse"),
        "git_commit": git_commit(),
        "data_sha256": sha256_of(environment[DATA_ENV]),
        "weights_sha256": sha256_of(environment[WEIGHTS_ENV]),
        "heldout_sha256": read_settings(course).get("heldout_sha256"),
        "grading_budget": budget.name,
        "grading_seed": budget.seed,
        "cell_timeout": cell_timeout,
        "isolation": preflight.get("isolation"),
        "kernel": {
            key: preflight.get(key) for key in ("python", "python_version", "tlcourse", "versions")
        },
    }


def require_isolation(isolation: dict, unsandboxed: bool, log: Callable[[str], None]) -> dict:
    """The pre-flight's isolation, if the batch may run with it; a warning when unsandboxed."""
    if isolation.get("sandbox") is None and not unsandboxed:
        raise GradingEnvironmentError(
            "The course's config turns the sandbox off (c.SandboxProvisioner.isolate = False "
            "in its nbgrader_config.py), so nobody was graded: students' code would run "
            "without isolation. Remove that line, or pass --unsandboxed to grade like this."
        )
    if unsandboxed:
        log(
            "WARNING: --unsandboxed: students' code runs without isolation (limits only); "
            "every grade's provenance says so."
        )
    return isolation


def _die_with_parent() -> None:
    """In a grading process: be killed when the batch dies, whatever kills it."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def log_paths(course: Path, assignment: str, student: str) -> tuple[Path, Path]:
    """Where a grading process's stdout and stderr go (kept for the instructor to read)."""
    folder = course / GRADER_DIR / "logs" / assignment
    return folder / f"{student}.out", folder / f"{student}.err"


def run_one(
    course: Path,
    assignment: str,
    student: str,
    cell_timeout: int | None,
    running: set | None = None,
    *,
    sandboxed: bool = True,
) -> dict:
    """Grade one staged submission in a fresh Python process; its JSON result.

    The process writes to files, not pipes: a kernel that outlives it and holds its output
    open cannot keep the batch waiting. ``running`` holds the processes under way, so that an
    interrupted batch can stop them. ``sandboxed=False``: its kernel runs without bubblewrap.
    """
    out_path, err_path = log_paths(course, assignment, student)
    result_path = out_path.with_suffix(".result.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", f"{__package__}.submission", str(course), assignment]
    command += [student, f"--result={result_path}"]
    command += [f"--cell-timeout={cell_timeout}"] if cell_timeout else []
    env = {**sandbox_environment(sandboxed), **course_environment(course)}
    env["PYTHONUNBUFFERED"] = "1"
    with open(out_path, "w+") as out, open(err_path, "w+") as err:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the batch, which stops its graders itself
            preexec_fn=_die_with_parent,
        )
        if running is not None:
            running.add(process)
        try:
            process.wait(timeout=SUBMISSION_WALL_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            raise RuntimeError(
                f"grading took over {SUBMISSION_WALL_SECONDS} s and was stopped"
            ) from None
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            if running is not None:
                running.discard(process)
        err.seek(0)
        stderr = err.read()
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if "environment_error" in result:
        raise EnvironmentFailure(result["environment_error"])
    if process.returncode != 0 or "error" in result or not result:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(result.get("error") or f"grading process failed ({err_path}):\n{tail}")
    return result


def _record(course: Path, assignment: str, graded: dict, extra: dict) -> None:
    """Write a student's done record; the grade it replaces goes into its history."""
    path = done_path(course, assignment, graded["student"])
    history = []
    if path.is_file():
        old = json.loads(path.read_text())
        history = old.get("history", []) + [
            {key: old.get(key) for key in ("score", "max_score", "graded_at", "source")}
        ]
    write_json_atomic(path, {**graded, **extra, "history": history})


def _log_rules(intake: Intake, log: Callable[[str], None]) -> None:
    """Say how file names became student ids, once per rule."""
    by_rule: dict[str, list[str]] = {}
    for student, rule in intake.rules.items():
        by_rule.setdefault(rule, []).append(student)
    for rule, students in sorted(by_rule.items()):
        if not rule.startswith("folder"):
            shown = ", ".join(sorted(students)[:3]) + (", ..." if len(students) > 3 else "")
            log(f"{len(students)} student id(s) from file names by the {rule} rule: {shown}")


def grade_class(
    course: str | os.PathLike,
    assignment: str,
    submissions: str | os.PathLike,
    *,
    students: list[str] | None = None,
    regrade: bool = False,
    workers: int = 2,
    cell_timeout: int | None = None,
    csv: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    unsandboxed: bool = False,
) -> BatchResult:
    """Grade every submission of ``assignment`` under ``submissions`` into ``course``.

    ``students`` limits the batch to those ids; ``regrade`` grades them again even when their
    files did not change (after a fix of the grading environment, say). ``unsandboxed``:
    students' code runs without bubblewrap (limits only), for machines that lack it.

    Raises:
        GradingEnvironmentError: the grader's environment is broken (nobody graded since),
            the sandbox cannot start, or the course's config turns it off without
            ``unsandboxed``.
        CourseError: no submissions, two submissions with one id, an unknown student.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    course = check_course(course)
    check_assignment(assignment)
    if workers < 1:
        raise ValueError(f"`workers` must be at least 1. Received: workers={workers}")
    intake = find_submissions(submissions, assignment)
    chosen = intake.students
    if students:
        unknown = sorted(set(students) - set(chosen))
        if unknown:
            raise CourseError(
                f"No submission of {assignment} in {submissions} for: {', '.join(unknown)}. "
                f"Student ids there: {', '.join(sorted(chosen))}."
            )
        chosen = {student: chosen[student] for student in students}
    _log_rules(intake, log)
    result = BatchResult()
    for name, reason in intake.rejected.items():
        result.failed[name] = reason
        log(f"{name}: not graded: {reason}")
    todo = []
    for student, source in chosen.items():
        digest = digest_of(source)
        if not regrade and is_done(course, assignment, student, digest):
            result.skipped.append(student)
        else:
            todo.append((student, source, digest))
    if result.skipped:
        log(f"{len(result.skipped)} already graded and unchanged: skipped (--regrade grades them).")
    preflight = check_environment(course, sandboxed=not unsandboxed) if todo else {}
    if todo:
        result.isolation = require_isolation(preflight.get("isolation") or {}, unsandboxed, log)
    provenance = batch_provenance(course, preflight, cell_timeout) if todo else {}
    staged = []
    for student, source, digest in todo:
        copy = stage(course, assignment, student, source)
        after = digest_of(source) if source.is_dir() else digest
        staged.append((student, source, sorted({digest, after, copy.digest})))
    broken: str | None = None
    running: set[subprocess.Popen] = set()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with tqdm(total=len(staged), unit="notebook", disable=not progress, desc=assignment) as bar:
            futures = {
                pool.submit(
                    run_one,
                    course,
                    assignment,
                    student,
                    cell_timeout,
                    running,
                    sandboxed=not unsandboxed,
                ): (
                    student,
                    source,
                    digests,
                )
                for student, source, digests in staged
            }
            for future in as_completed(futures):
                student, source, digests = futures[future]
                try:
                    graded = future.result()
                except EnvironmentFailure as error:  # the grader's fault: stop, record nothing
                    broken = str(error)
                    pool.shutdown(wait=False, cancel_futures=True)
                    break
                except CancelledError:
                    continue
                except Exception as error:  # noqa: BLE001 - one failure never stops the class
                    result.failed[student] = str(error)
                    log(f"{student}: not graded: {error}")
                else:
                    result.graded.append(graded)
                    extra = {
                        "digests": digests,
                        "source": str(source.relative_to(intake.root)),
                        "graded_at": now_utc(),
                        "provenance": provenance,
                    }
                    _record(course, assignment, graded, extra)
                bar.update(1)
    except BaseException:  # Ctrl-C: stop the graders now; a rerun grades what was not done
        pool.shutdown(wait=False, cancel_futures=True)
        _stop(running)
        raise
    if broken is not None:
        _stop(running)
    pool.shutdown()
    result.report = write_report(course, assignment, result.failed, intake.rejected)
    result.csv = export_csv(course, Path(csv) if csv else course / "grades.csv")
    result.seconds = time.perf_counter() - start
    if broken is not None:
        raise GradingEnvironmentError(
            f"{broken}\nThe batch stopped there; {len(result.graded)} submission(s) graded "
            "before it are kept. Rerun the same command once it is fixed."
        )
    return result


def _stop(running: set) -> None:
    for process in list(running):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
