"""The grading sandbox, guard and cell restoration, each on its own (no nbgrader, no kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from grading_fixtures import PROJECT_ROOT

from tlcourse.grading import guard as guard_module
from tlcourse.grading.integrity import restore_graded_cells
from tlcourse.grading.sandbox import Limits, SandboxSpec, isolation

RELEASE = PROJECT_ROOT / "exercises" / "01-preprocessing" / "01-preprocessing.ipynb"
PROBE = r"""
import json, os, socket, sys
course, outside = sys.argv[1], sys.argv[2]
found = {"course": sorted(os.listdir(course))}
for name, path in (("data", sys.argv[3:4]), ("data-folder", sys.argv[4:5])):
    if path:
        listed = sorted(os.listdir(os.path.dirname(path[0])))
        found[name] = (open(path[0]).read(), listed, os.access(path[0], os.W_OK))
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    found["network"] = "reached"
except OSError as error:
    found["network"] = type(error).__name__
for name, path in (("here", "mine.txt"), ("outside", outside)):
    try:
        open(path, "w").write("written")
        found[name] = "written"
    except OSError as error:
        found[name] = type(error).__name__
try:
    hog = bytearray(2 * 2**30)
    found["memory"] = "allocated"
except MemoryError:
    found["memory"] = "MemoryError"
print(json.dumps(found))
"""


def _sandboxed(spec: SandboxSpec, cwd: Path, *args: str) -> dict:
    command = [sys.executable, "-m", "tlcourse.grading.sandbox", spec.dumps(), "--"]
    done = subprocess.run(
        [*command, sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_sandboxed_process_sees_no_course_no_network_and_writes_only_its_folder(tmp_path):
    if not isolation()["namespaces"]:
        pytest.skip("this machine gives no Linux namespaces (not root, no user namespaces)")
    course = tmp_path / "course"
    mine = course / "autograded" / "alice" / "01-preprocessing"
    mine.mkdir(parents=True)
    (course / "grader").mkdir()
    (course / "grader" / "heldout.npz").write_bytes(b"secret")
    outside = tmp_path / "outside.txt"
    outside.write_text("before")
    # the grader's data and weights, under /tmp as in CI: readable, nothing beside them is
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    (data / "data_batch_1").write_text("images")
    (tmp_path / "data" / "private.txt").write_text("not for students")
    weights = tmp_path / "weights" / "squeezenet.npz"
    weights.parent.mkdir()
    weights.write_text("weights")
    (weights.parent / "other.npz").write_text("not for students")
    spec = SandboxSpec(
        Limits(memory_mb=1024),
        writable=[str(mine)],
        hidden=[str(course)],
        readable=[str(data), str(weights), str(course / "grader")],  # not what is hidden
    )
    found = _sandboxed(
        spec, mine, str(course), str(outside), str(weights), str(data / "data_batch_1")
    )
    assert found["data"] == ["weights", ["squeezenet.npz"], False]
    assert found["data-folder"] == ["images", ["data_batch_1"], False]
    assert found["course"] == ["autograded"]  # the grader's folder is out of sight
    assert found["network"] == "OSError" or found["network"].endswith("Error")
    assert found["network"] != "reached"
    assert found["here"] == "written" and (mine / "mine.txt").read_text() == "written"
    # /tmp is private: a write there lands in a throwaway folder, never in the real file
    assert outside.read_text() == "before"
    assert found["memory"] == "MemoryError"


def test_the_private_tmp_stays_private_when_asked_to_read_all_of_it(tmp_path):
    if not isolation()["namespaces"]:
        pytest.skip("this machine gives no Linux namespaces (not root, no user namespaces)")
    mine = tmp_path / "mine"
    mine.mkdir()
    (tmp_path / "secret.txt").write_text("another grader's file")
    spec = SandboxSpec(Limits(memory_mb=1024), writable=[str(mine)], readable=["/tmp"])
    script = "import os, sys; print(repr(sorted(os.listdir(sys.argv[1]))))"
    done = subprocess.run(
        [sys.executable, "-m", "tlcourse.grading.sandbox", spec.dumps(), "--"]
        + [sys.executable, "-c", script, str(tmp_path)],
        cwd=mine,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['mine']"  # only the bound folder, nothing else of /tmp


def test_without_namespaces_the_limits_still_hold(tmp_path):
    spec = SandboxSpec(Limits(memory_mb=1024), writable=[str(tmp_path)], isolate=False)
    found = _sandboxed(spec, tmp_path, str(tmp_path), str(tmp_path / "x.txt"))
    assert found["memory"] == "MemoryError"


def test_guard_finds_and_repairs_a_patched_check_and_numpy():
    from tlcourse.grading import checks

    key_guard = guard_module.Guard(b"k" * 32, shell=None)
    original_check, original_allclose = checks.check_one_hot, np.allclose
    try:
        checks.check_one_hot = lambda *args, **kwargs: None
        np.allclose = lambda *args, **kwargs: True
        with pytest.raises(AssertionError, match="check_one_hot was replaced"):
            key_guard.enter("test_encode_labels")
        assert checks.check_one_hot is original_check and np.allclose is original_allclose
        assert key_guard.tampered() == []
    finally:
        checks.check_one_hot, np.allclose = original_check, original_allclose


def test_pass_tokens_depend_on_the_key_and_the_test():
    a = guard_module.token(b"a" * 32, "test_x")
    assert a == guard_module.token(b"a" * 32, "test_x")
    assert a != guard_module.token(b"b" * 32, "test_x")
    assert a != guard_module.token(b"a" * 32, "test_y")


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_deleted_and_edited_test_cells_come_back_as_released():
    release = nbformat.read(RELEASE, as_version=4)
    nb = nbformat.read(RELEASE, as_version=4)
    position = nb.cells.index(_cell(nb, "test_encode_labels"))
    nb.cells.remove(_cell(nb, "test_encode_labels"))
    _cell(nb, "test_to_unit").source = "pass"
    _cell(nb, "test_split").metadata.nbgrader.points = 100
    notes = restore_graded_cells(nb, release)
    assert nb.cells.index(_cell(nb, "test_encode_labels")) == position
    assert _cell(nb, "test_to_unit").source == _cell(release, "test_to_unit").source
    assert _cell(nb, "test_split").metadata.nbgrader.points == 2
    assert len(notes) == 3 and any("'test_encode_labels' was missing" in n for n in notes)


def test_a_cell_cannot_award_itself_points_and_answers_are_kept():
    release = nbformat.read(RELEASE, as_version=4)
    nb = nbformat.read(RELEASE, as_version=4)
    _cell(nb, "to_unit").source = "def to_unit(images):\n    return images / 255\n"
    fake = nbformat.v4.new_code_cell("assert True")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "free_points", "points": 50}
    nb.cells.append(fake)
    notes = restore_graded_cells(nb, release)
    assert "nbgrader" not in nb.cells[-1].metadata
    assert _cell(nb, "to_unit").source.endswith("return images / 255\n")
    assert notes == [
        "A cell claimed to be graded cell 'free_points', which this assignment does not have: "
        "it was graded as an ordinary cell."
    ]
    assert restore_graded_cells(nbformat.read(RELEASE, as_version=4), release) == []
