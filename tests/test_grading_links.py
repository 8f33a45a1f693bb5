"""The submission folder is hostile data: links a student submits, or a kernel writes, are never
followed by the grader (which runs as root in CI), and a student's cell that holds nbgrader's
marker text is graded like any other. One batch through ``tlcourse grade`` and nbgrader.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from grading_fixtures import solution

from tlcourse.cli import main
from tlcourse.grading.grade.folders import copy_regular_files, regular_files, remove_irregular

A = "01-preprocessing"


def _with_prefix(code: str) -> str:
    nb = nbformat.read(solution(A), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "to_unit")
    cell.source = code + "\n" + cell.source
    return nbformat.writes(nb)


def _links_below(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_symlink()]


@pytest.mark.slow
def test_links_in_a_submission_are_never_followed_and_marker_text_is_harmless(
    fresh_course, tmp_path
):
    course = Path(shutil.copytree(fresh_course, tmp_path / "course"))
    canary = tmp_path / "canary.txt"
    canary.write_text("canary: the grader must neither write nor copy me\n")
    canary.chmod(0o600)
    secrets = [course / "gradebook.db", course / "grader" / "heldout.npz"]
    subs = tmp_path / "subs"

    planted = subs / "links" / A  # the student's own links, in the folder they hand in
    planted.mkdir(parents=True)
    planted.joinpath(f"{A}.ipynb").write_text(solution(A).read_text())
    for name, target in [
        ("canary.txt", canary),
        ("gradebook.db", secrets[0]),
        ("heldout.npz", secrets[1]),
        ("source", course / "source"),
        ("grader-notes.json", canary),
    ]:
        os.symlink(target, planted / name)

    made = subs / "kernel-links" / A  # links the student's code makes while it is graded
    made.mkdir(parents=True)
    code = (
        "import os\n"
        f"for _name, _target in [({A + '.ipynb'!r}, {str(canary)!r}), "
        f"('grader-notes.json', {str(canary)!r}), ('db', {str(secrets[0])!r}), "
        f"('held', {str(secrets[1])!r})]:\n"
        "    if os.path.lexists(_name):\n"
        "        os.remove(_name)\n"
        "    os.symlink(_target, _name)\n"
    )
    made.joinpath(f"{A}.ipynb").write_text(_with_prefix(code))

    marker = subs / "marker" / A
    marker.mkdir(parents=True)
    marker.joinpath(f"{A}.ipynb").write_text(
        _with_prefix("# ### BEGIN HIDDEN TESTS  (a student's note, not a test)")
    )

    before = (canary.read_bytes(), stat.S_IMODE(canary.stat().st_mode))
    args = ["grade", A, "--course", str(course), "--submissions", str(subs)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for student in ("links", "kernel-links", "marker"):
        assert f"{student}: 10 / 10" in result.output, result.output
    assert (canary.read_bytes(), stat.S_IMODE(canary.stat().st_mode)) == before
    for folder in ("submitted", "autograded", "feedback"):
        assert _links_below(course / folder) == [], folder
    secret_bytes = {path.read_bytes() for path in secrets} | {canary.read_bytes()}
    for student in ("links", "kernel-links", "marker"):
        kept = regular_files(course / "feedback" / student)
        assert {p.name for p in kept} <= {f"{A}.html", "grader-notes.json"}, kept
        assert all(p.read_bytes() not in secret_bytes for p in kept)
        notes = course / "feedback" / student / A / "grader-notes.json"
        assert not notes.exists() or isinstance(json.loads(notes.read_text()), list)
    feedback = (course / "feedback" / "links" / A / f"{A}.html").read_text()
    assert "links and other special files are not graded" in feedback
    assert (
        "BEGIN HIDDEN TESTS  (a student"
        in (course / "feedback" / "marker" / A / f"{A}.html").read_text()
    )


def test_only_regular_files_are_copied_hashed_or_kept(tmp_path):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a.txt").write_text("a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    os.symlink(outside / "secret", source / "link")
    os.symlink(outside, source / "dirlink")
    os.mkfifo(source / "fifo")
    assert regular_files(source) == [source / "sub" / "a.txt"]
    skipped = copy_regular_files(source, tmp_path / "out")
    assert sorted(skipped) == ["dirlink", "fifo", "link"]
    assert [
        p.relative_to(tmp_path / "out").as_posix() for p in regular_files(tmp_path / "out")
    ] == ["sub/a.txt"]
    assert sorted(remove_irregular(source)) == ["dirlink", "fifo", "link"]
    assert (outside / "secret").read_text() == "secret"
    assert sorted(p.name for p in source.iterdir()) == ["sub"]
