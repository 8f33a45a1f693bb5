"""Broken and hostile submissions graded in one batch beside correct ones (issue: grading that
survives them). The batch runs once a session (``hostile``), through ``grade_class`` and real
nbgrader, in the sandbox; the corpus is ``autograder/tests/corpus/hostile.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixtures import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "autograder" / "tests"))
from corpus.hostile import (  # noqa: E402
    ASSIGNMENT,
    CASES,
    Context,
    grade_corpus,
    leak_server,
    write_submissions,
)

#: The whole batch (2 workers, a 30 s cell limit) must end within this: 30 s a submission, far
#: below what one hung or surviving kernel would cost (the batch would never end).
BATCH_BOUND_SECONDS = 30 * len(CASES)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory, cifar10_root: Path, weights_npz: Path):
    root = tmp_path_factory.mktemp("hostile")
    with leak_server() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("TLCOURSE_CACHE", str(root / "cache"))
        outcome = grade_corpus(
            root, cifar10_root / "cifar-10-batches-py", weights_npz, server.context(root)
        )
        outcome["requests"] = list(server.requests)
    return outcome


def _row(hostile, name: str) -> dict:
    return next(row for row in hostile["rows"] if row["case"] == name)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_case_gets_its_expected_grade_and_note(hostile, case):
    row = _row(hostile, case.name)
    assert row["not_graded"] is None, row
    assert (row["score"], row["max_score"]) == (case.score, 10), row
    for text in case.notes:
        assert any(text in note for note in row["notes"]), (text, row["notes"])
    graded = hostile["course"] / "autograded" / case.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = nbformat.read(graded, as_version=4).cells
    outputs = json.dumps([c.get("outputs", []) for c in cells])
    for text in case.absent:
        assert text not in outputs, (case.name, text)
    tests = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade")]
    # pass tokens never reach the feedback
    assert "tlcourse-guard:" not in json.dumps([c.get("outputs", []) for c in tests])


@pytest.mark.slow
def test_the_batch_is_bounded_and_the_correct_ones_get_full_marks(hostile):
    assert hostile["batch_seconds"] < BATCH_BOUND_SECONDS
    for name in ("correct", "correct-copy"):
        row = _row(hostile, name)
        assert row["score"] == row["max_score"] == 10 and not row["notes"], row


@pytest.mark.slow
def test_identical_submissions_are_flagged_for_the_instructor(hostile):
    assert _row(hostile, "correct")["identical_to"] == ["correct-copy"]
    assert _row(hostile, "correct-copy")["identical_to"] == ["correct"]
    assert _row(hostile, "test-edited")["identical_to"] == []


@pytest.mark.slow
def test_nothing_outside_the_sandbox_was_read_written_or_reached(hostile):
    assert hostile["sentinel"].read_text() == "sentinel"
    assert hostile["requests"] == []
    correct = hostile["course"] / "autograded" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert "overwritten by a student" not in correct.read_text()
    rows = {row["case"]: row for row in hostile["rows"]}
    assert len(rows) == len(CASES)  # the gradebook survived the attempts to overwrite it


@pytest.mark.slow
def test_no_sandboxed_process_outlives_the_batch(hostile):
    found = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "tlcourse.grading.sandbox" not in found
    assert "ipykernel_launcher" not in found  # kernels, fork-bomb children included
    # Nothing of the batch's sandboxes is left, the survivor's included: no process works in
    # the course (bubblewrap and all it started did), none runs as a sandbox uid, and no
    # cgroup of a sandbox holds a task.
    from tlcourse.grading.sandbox import SandboxProvisioner

    first, count = SandboxProvisioner().uid_first, SandboxProvisioner().uid_count
    left = {}
    for entry in Path("/proc").iterdir():
        try:
            cwd, uid = os.readlink(entry / "cwd"), entry.stat().st_uid
            if cwd.startswith(str(hostile["course"])) or first <= uid < first + count:
                left[entry.name] = ((entry / "cmdline").read_bytes()[:200], cwd, uid)
        except (OSError, ValueError):
            continue
    assert left == {}
    bases = [base for base in Path("/sys/fs/cgroup").iterdir() if base.is_dir()]
    cgroups = [path for base in bases for path in base.rglob("tlcourse-*")]
    assert [path for path in cgroups if (path / "cgroup.procs").read_text().strip()] == []


def _grade_command(course: Path, submissions: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tlcourse",
        "grade",
        ASSIGNMENT,
        "--course",
        str(course),
        "--submissions",
        str(submissions),
        "--workers",
        "1",
        "--cell-timeout",
        "30",
    ]


def _scores(csv_path: Path) -> dict[str, tuple[str, str]]:
    import csv

    with csv_path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == ASSIGNMENT]
    return {r["student_id"]: (r["score"], r["max_score"]) for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_killed_batch_rerun_gives_the_grades_of_an_uninterrupted_one(
    tmp_path, cifar10_root, weights_npz, sig
):
    """Kill the batch while it grades its second notebook, rerun it: the same grades."""
    from tlcourse.grading.grade.course import init_course

    course = init_course(
        tmp_path / "course",
        data=cifar10_root / "cifar-10-batches-py",
        weights=weights_npz,
        force=True,
    )
    chosen = ("correct", "test-edited", "os-exit")
    subs = tmp_path / "submissions"
    written = write_submissions(
        PROJECT_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        tmp_path / "all",
        Context(tmp_path / "sentinel.txt", 9),
    )
    for name in chosen:
        shutil.copytree(written[name].parents[1], subs / name)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "TLCOURSE_CACHE": str(tmp_path / "cache"),
    }
    batch = subprocess.Popen(
        _grade_command(course, subs),
        env=env,
        start_new_session=True,
        # a background job inherits SIGINT ignored; Ctrl-C reaches a foreground batch
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    done = course / "grader" / "done" / ASSIGNMENT
    deadline = time.monotonic() + 300
    while not (done.is_dir() and any(done.glob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # into the next notebook's grading
    batch.send_signal(sig)
    batch.wait(timeout=60)
    assert batch.returncode != 0
    assert 1 <= len(list(done.glob("*.json"))) < len(chosen)
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(course) not in ps  # the graders and their kernels died with the batch
    rerun = subprocess.run(_grade_command(course, subs), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    scores = {case.name: case.score for case in CASES}
    assert _scores(course / "grades.csv") == {
        name: (f"{scores[name]:.1f}", "10.0") for name in chosen
    }
