"""Grading in ordinary use: a broken grading environment grades nobody, students are never
lost or merged, batches accumulate, ``--regrade`` grades again (issue: grading that works on a
fresh machine). Each test grades real notebooks through ``tlcourse grade`` and nbgrader.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from grading_fixtures import exercise, solution

from tlcourse.cli import main
from tlcourse.grading.grade.course import SETTINGS_FILE, kernel_environment

A = "01-preprocessing"


@pytest.fixture
def course(fresh_course: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fresh_course, tmp_path / "course"))


def _folders(root: Path, students: dict[str, Path | str]) -> Path:
    """nbgrader's layout: ``root/<student>/A/A.ipynb`` from a notebook file or its text."""
    for student, notebook in students.items():
        (root / student / A).mkdir(parents=True)
        text = notebook.read_text() if isinstance(notebook, Path) else notebook
        (root / student / A / f"{A}.ipynb").write_text(text)
    return root


def _grade(course: Path, submissions: Path, *extra: str):
    args = ["grade", A, *extra, "--course", str(course), "--submissions", str(submissions)]
    return CliRunner().invoke(main, args)


def _report(course: Path) -> dict:
    return json.loads((course / "grader" / "reports" / f"{A}.json").read_text())["students"]


def _gradebook_students(course: Path) -> list[str]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "tlcourse") as gb:
        return sorted(s.student.id for s in gb.find_assignment(A).submissions)


def _set_environment(course: Path, name: str, value: str) -> None:
    settings = json.loads((course / SETTINGS_FILE).read_text())
    settings["environment"][name] = value
    (course / SETTINGS_FILE).write_text(json.dumps(settings))


def _kernel_without_tlcourse(course: Path, folder: Path, monkeypatch) -> None:
    """Graded kernels of a Python that has the kernel's packages but not tlcourse: this venv's
    site-packages without its ``.pth`` files (``-S``), where the editable install lives."""
    import site

    spec = folder / "kernels" / "no-tlcourse"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-S", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "env": {"PYTHONPATH": os.pathsep.join(site.getsitepackages())}}
    (spec / "kernel.json").write_text(json.dumps({**kernel, "language": "python"}))
    with (course / "nbgrader_config.py").open("a") as config:
        config.write('\nc.Execute.kernel_name = "no-tlcourse"\n')
    monkeypatch.setenv("JUPYTER_PATH", str(folder))


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["data", "weights", "tlcourse", "heldout", "stale-config"])
def test_a_broken_environment_grades_nobody_and_names_the_fix(
    course, tmp_path, weights_npz, monkeypatch, broken
):
    if broken == "data":
        _set_environment(course, "TLCOURSE_DATA", str(tmp_path / "moved" / "cifar-10-batches-py"))
        said = "cannot find CIFAR-10 where the course says it is"
    elif broken == "weights":  # a truncated copy: it exists, but is not the weights
        truncated = tmp_path / "truncated.npz"
        truncated.write_bytes(weights_npz.read_bytes()[:100_000])
        _set_environment(course, "TLCOURSE_WEIGHTS", str(truncated))
        said = "cannot use the SqueezeNet weights the course names"
    elif broken == "tlcourse":
        _kernel_without_tlcourse(course, tmp_path / "jupyter", monkeypatch)
        said = "graded kernels cannot import tlcourse"
    elif broken == "stale-config":  # written by a tlcourse whose modules lived elsewhere
        config = course / "nbgrader_config.py"
        old = "tlcourse.grading.preprocessors.execute.GuardedExecute"
        config.write_text(
            config.read_text().replace(old, "tlcourse.grading.execute.GuardedExecute")
        )
        said = "course init"
    else:  # the grader's own held-out images, changed on disk
        heldout = course / "grader" / "heldout.npz"
        heldout.write_bytes(heldout.read_bytes()[:-10])
        said = "changed since the course was created"
    submissions = _folders(tmp_path / "subs", {"ann_lee": solution(A), "ann_kim": exercise(A)})
    result = _grade(course, submissions)
    assert result.exit_code != 0, result.output
    assert "nobody was graded" in result.output and said in result.output, result.output
    assert "ann_lee: " not in result.output
    assert _gradebook_students(course) == []
    assert not (course / "grader" / "done").exists() and not (course / "feedback").exists()


@pytest.mark.slow
def test_an_environment_that_breaks_during_the_batch_stops_it_and_keeps_no_grade(
    course, tmp_path, cifar10_root, monkeypatch
):
    import tlcourse.grading.grade.pool as batch
    from tlcourse.grading.grade.preflight import GradingEnvironmentError

    # graded kernels read the course's own view of the data (grader/kernel-data)
    view = Path(kernel_environment(course)["TLCOURSE_DATA"])
    submissions = _folders(tmp_path / "subs", {"ann_lee": solution(A)})
    started = batch.batch_provenance

    def unplug_after_the_preflight(*args):  # the files go away once the batch has started
        provenance = started(*args)
        shutil.rmtree(view)
        view.mkdir()
        return provenance

    monkeypatch.setattr(batch, "batch_provenance", unplug_after_the_preflight)
    with pytest.raises(GradingEnvironmentError, match="view of the data .* changed") as error:
        batch.grade_class(course, A, submissions, progress=False, log=lambda _: None)
    assert "The batch stopped there" in str(error.value)
    assert _gradebook_students(course) == []
    assert not (course / "grader" / "done" / A / "ann_lee.json").exists()
    assert not (course / "feedback" / "ann_lee").exists()


def _slow_solution(seconds: int) -> str:
    """The solution with a sleep in one answer: right, but slower than a tight cell limit."""
    nb = nbformat.read(solution(A), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "to_unit")
    cell.source = f"import time\ntime.sleep({seconds})\n" + cell.source
    return nbformat.writes(nb)


@pytest.mark.slow
def test_a_class_over_two_batches_with_underscores_shadows_and_a_regrade(course, tmp_path):
    first = _folders(
        tmp_path / "first",
        {
            "ann_lee": solution(A),
            "ann_kim": exercise(A),
            "patch_1": _slow_solution(20),
            "patch_2": solution(A),
        },
    )
    # A student's files named like the grader's modules shadow nothing and stop nothing.
    for name in ("tlcourse.py", "tensorflow.py", "numpy.py"):
        (first / "patch_2" / A / name).write_text("raise ModuleNotFoundError('planted')\n")
    result = _grade(course, first, "--cell-timeout", "12")
    assert result.exit_code == 0, result.output
    report = _report(course)
    scores = {student: row["score"] for student, row in report.items()}
    assert scores == {"ann_lee": 10, "ann_kim": 0, "patch_1": 8, "patch_2": 10}, result.output
    assert report["patch_1"]["provenance"]["cell_timeout"] == 12
    provenance = report["ann_lee"]["provenance"]
    assert provenance["grading_budget"] == "grading" and provenance["grading_seed"] == 0
    assert len(provenance["data_sha256"]) == len(provenance["weights_sha256"]) == 64

    late = tmp_path / "late"
    late.mkdir()
    with zipfile.ZipFile(late / "leeann_LATE_4242_77_01-preprocessing.zip", "w") as archive:
        archive.writestr(f"{A}.ipynb", solution(A).read_text())  # Canvas naming, late
    result = _grade(course, late)
    assert result.exit_code == 0, result.output
    assert "by the Canvas rule: leeann-4242" in result.output
    report = _report(course)
    assert sorted(report) == ["ann_kim", "ann_lee", "leeann-4242", "patch_1", "patch_2"]
    assert report["leeann-4242"]["identical_to"] == ["ann_lee", "patch_2"]  # across batches
    assert "leeann-4242" in report["ann_lee"]["identical_to"]

    result = _grade(course, first, "patch_1", "--regrade")  # the limit was the grader's fault
    assert result.exit_code == 0, result.output
    assert "patch_1: 10 / 10" in result.output and "ann_lee:" not in result.output
    row = _report(course)["patch_1"]
    assert row["score"] == 10 and [h["score"] for h in row["history"]] == [8]
    assert _gradebook_students(course) == sorted(report)


def test_an_unknown_student_to_regrade_is_named(course, tmp_path):
    submissions = _folders(tmp_path / "subs", {"ann_lee": solution(A)})
    result = _grade(course, submissions, "ann_le", "--regrade")
    assert result.exit_code != 0
    assert "No submission of 01-preprocessing" in result.output and "ann_lee" in result.output


def test_course_init_stores_absolute_paths_from_relative_ones(
    tmp_path, cifar10_root, weights_npz, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    data = Path("data")
    shutil.copytree(cifar10_root / "cifar-10-batches-py", data / "cifar-10-batches-py")
    shutil.copy(weights_npz, "w.npz")
    monkeypatch.setenv("TLCOURSE_DATA", "data")
    monkeypatch.setenv("TLCOURSE_WEIGHTS", "./w.npz")
    result = CliRunner().invoke(main, ["course", "init", "course"])
    assert result.exit_code == 0, result.output
    environment = json.loads((tmp_path / "course" / SETTINGS_FILE).read_text())["environment"]
    assert environment == {
        "TLCOURSE_DATA": str((tmp_path / "data" / "cifar-10-batches-py").resolve()),
        "TLCOURSE_WEIGHTS": str((tmp_path / "w.npz").resolve()),
    }


def test_course_init_refuses_weights_that_are_not_squeezenet(tmp_path, cifar10_root):
    bad = tmp_path / "weights.npz"
    bad.write_text("not an npz")
    result = CliRunner().invoke(
        main,
        ["course", "init", str(tmp_path / "c"), "--data", str(cifar10_root), "--weights", str(bad)],
    )
    assert result.exit_code != 0 and "not a readable .npz" in result.output
    assert "allow_pickle" not in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_a_checkout_venv_and_data_under_tmp_grade_to_full_marks(cifar10_root, weights_npz):
    """The grader's Python, its tlcourse and the data all under /tmp, which every kernel gets
    a private copy of: what kernels import and read is bound back, read-only."""
    import site
    import subprocess
    import tempfile

    from grading_fixtures import PROJECT_ROOT

    with tempfile.TemporaryDirectory(prefix="tlcourse-", dir="/tmp") as folder:
        base = Path(folder)
        checkout = base / "checkout"
        skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
        for name in ("tlcourse", "solutions", "exercises", "autograder"):
            shutil.copytree(PROJECT_ROOT / name, checkout / name, ignore=skip)
        shutil.copy(PROJECT_ROOT / "pyproject.toml", checkout)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", base / "venv"], check=True)
        python = base / "venv" / "bin" / "python"
        packages = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # This checkout's copy first, then the packages it needs (no editable finder: .pth
        # files of an added folder are not run).
        lines = [str(checkout), *site.getsitepackages()]
        Path(packages, "tlcourse-under-tmp.pth").write_text("\n".join(lines) + "\n")
        shutil.copytree(cifar10_root / "cifar-10-batches-py", base / "data" / "cifar-10-batches-py")
        shutil.copy(weights_npz, base / "weights.npz")
        _folders(base / "subs", {"ann_lee": solution(A)})
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TLCOURSE_", "PYTHONPATH", "VIRTUAL_ENV"))
        }
        scripts = f"{python.parent}:{Path(sys.executable).parent}"  # nbgrader runs alembic
        env |= {"TLCOURSE_CACHE": str(base / "cache"), "PATH": f"{scripts}:{env['PATH']}"}
        env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert templates
        env |= {"TLCOURSE_DATA": "data", "TLCOURSE_WEIGHTS": "weights.npz"}  # relative, as README

        def tlcourse(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [python, "-m", "tlcourse", *args], cwd=base, env=env, capture_output=True, text=True
            )

        done = tlcourse("course", "init", "course")
        assert done.returncode == 0, done.stderr
        done = tlcourse("grade", A, "--course", "course", "--submissions", "subs")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ann_lee: 10 / 10" in done.stdout
        kernel = _report(base / "course")["ann_lee"]["provenance"]["kernel"]
        assert kernel["python"].startswith(str(base / "venv"))
        assert kernel["tlcourse"]["path"].startswith(str(checkout))
