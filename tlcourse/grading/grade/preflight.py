"""Pre-flight: before anyone is graded, one kernel in the students' sandbox proves the grader's
environment works.

:func:`check_environment` first checks what the grader itself reads (its held-out images; the
data and weights the course recorded for it: kernels are shown the course's own view of them),
then starts a grading process of its own (``python -m tlcourse.grading.grade.preflight COURSE``).
That process makes a sandbox with the course's settings and reports what it enforces
(:func:`~tlcourse.grading.sandbox.isolation`): a sandbox that cannot start (no bubblewrap, no
user namespaces) is the grader's problem, named with its fix, never a student's 0. It checks
that the sandbox's unprivileged user may read the data and weights the kernels are shown.
Then it runs a one-cell notebook through the course's own ``GuardedExecute``: the same
kernel, sandbox, limits and course environment as a student's notebook. The cell imports
``tlcourse``, finds the data and the weights the course recorded (no download) and validates
the weights. When anything fails, nobody is graded: :class:`GradingEnvironmentError` names
each cause and its fix. What it reports on success (Python, versions, paths, isolation) goes
into every grade's provenance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.errors import TLCourseError
from tlcourse.grading.grade.course import (
    CONFIG_FILE,
    GRADER_DIR,
    HELDOUT_FILE,
    apply_course_environment,
    course_environment,
    kernel_environment,
    nbgrader_config,
    read_settings,
)
from tlcourse.grading.sandbox import (
    UNSANDBOXED_ENV,
    SandboxError,
    SandboxUnavailable,
    isolation,
    unreadable_by_kernels,
)
from tlcourse.provenance import sha256_of

#: Prefix of the probe's one line of results in its cell's output.
REPORT_PREFIX = "TLCOURSE-PREFLIGHT "
#: A pre-flight kernel that has not answered after this long is a broken environment.
PREFLIGHT_SECONDS = 300

PROBE = f"""
import json, os, platform, sys
report = {{"python": sys.executable, "python_version": platform.python_version()}}
problems = []
try:
    import tlcourse
    from importlib import metadata
    report["tlcourse"] = {{"version": metadata.version("tlcourse"), "path": tlcourse.__file__}}
except Exception as error:
    problems.append(("tlcourse", f"{{type(error).__name__}}: {{error}}"))
else:
    from tlcourse.data import locate_cifar10
    from tlcourse.weights import locate_weights, read_weights_file, validate_state_dict
    try:
        report["data"] = str(locate_cifar10(download=False))
    except Exception as error:
        problems.append(("data", f"{{type(error).__name__}}: {{error}}"))
    try:
        weights = locate_weights(download=False)
        validate_state_dict(read_weights_file(weights), source=str(weights))
        report["weights"] = str(weights)
    except Exception as error:
        problems.append(("weights", f"{{type(error).__name__}}: {{error}}"))
    try:
        import keras, numpy, tensorflow
        report["versions"] = {{
            "tensorflow": tensorflow.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__,
        }}
    except Exception as error:
        problems.append(("tensorflow", f"{{type(error).__name__}}: {{error}}"))
report["problems"] = problems
print({REPORT_PREFIX!r} + json.dumps(report))
"""

FIXES = {
    "tlcourse": (
        "graded kernels cannot import tlcourse. Install it into the Python that runs the "
        "kernels (in the checkout: .venv/bin/pip install -e '.[cpu,dev]'), run tlcourse from "
        "that environment, and check `jupyter kernelspec list` for a python3 kernel of "
        "another Python"
    ),
    "data": (
        "graded kernels cannot find CIFAR-10 where the course says it is ({where}). Put the "
        "data back there, or record its new place with: tlcourse course init {course} --force "
        "--data PATH"
    ),
    "weights": (
        "graded kernels cannot use the SqueezeNet weights the course names ({where}). Put a "
        "valid file back there, or record another with: tlcourse course init {course} --force "
        "--weights PATH"
    ),
    "tensorflow": "graded kernels cannot import TensorFlow/Keras: reinstall them in the venv",
    "kernel": (
        "no graded kernel could run (the kernel did not start, or the sandbox refused it). "
        "Check that ipykernel is installed in the environment that runs tlcourse"
    ),
    # the detail of these is their fix
    "sandbox": "graded kernels cannot start in their sandbox: {detail}",
    "unreadable": "graded kernels cannot read what the course shows them: {detail}",
    "files": "{detail}",
}


class GradingEnvironmentError(TLCourseError):
    """The grader's own environment is broken: nobody can be graded until it is fixed."""


def sandbox_environment(sandboxed: bool) -> dict[str, str]:
    """This process's environment for a grading process: with ``$TLCOURSE_UNSANDBOXED``
    only when the instructor asked for no sandbox (never inherited from the shell)."""
    env = {key: value for key, value in os.environ.items() if key != UNSANDBOXED_ENV}
    return env if sandboxed else {**env, UNSANDBOXED_ENV: "1"}


def environment_message(course: Path, problems: list[tuple[str, str]]) -> str:
    recorded = course_environment(course)
    where = {"data": recorded.get("TLCOURSE_DATA"), "weights": recorded.get("TLCOURSE_WEIGHTS")}
    lines = [
        "The grading environment is broken, so nobody was graded (no grade, no feedback "
        "written). Fix it, then run the same command again:"
    ]
    for what, detail in problems:
        template = FIXES.get(what, FIXES["kernel"])
        fix = template.format(where=where.get(what), course=course, detail=detail)
        said = "" if "{detail}" in template else f"\n  The kernel said: {detail}"
        lines.append(f"- {fix.rstrip('.')}.{said}")
    return "\n".join(lines)


def unreadable_message(paths: list[str], uid: int) -> str:
    """The fix for files the sandbox's user may not read."""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    tops = " ".join(sorted({path for path in paths[:3]}))
    return (
        f"the kernels run as an unprivileged user (uid {uid}, neither owner nor group of "
        f"these files) that may not read {shown}. Make them readable to every user, e.g. "
        f"chmod -R o+rX {tops} (folders above them need only o+x), then run the same "
        "command again"
    )


def sandbox_problems(config, course: Path | None = None) -> tuple[dict, list[tuple[str, str]]]:
    """What the course's sandbox enforces here, and why graded kernels could not run in it
    (it cannot start; its user may not read the data or weights shown to it)."""
    from tlcourse.grading.preprocessors.execute import kernel_view

    try:
        isolated = isolation(config)
    except (SandboxUnavailable, SandboxError) as error:
        return {}, [("sandbox", str(error))]
    read_only, _ = kernel_view(course)
    hidden, uid = unreadable_by_kernels(list(read_only.values()), config)
    if hidden:
        return isolated, [("unreadable", unreadable_message(hidden, uid))]
    return isolated, []


def run_probe(course: Path) -> dict:
    """In a grading process: run the probe in a sandboxed kernel; its report (with problems)."""
    from tlcourse.grading.preprocessors.execute import GuardedExecute

    course = Path(course).resolve()
    apply_course_environment(course)
    config = nbgrader_config(course)
    isolated, problems = sandbox_problems(config, course)
    if problems:
        return {"problems": problems}
    base = course / GRADER_DIR / "preflight"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=base))
    resources = {
        "metadata": {"path": str(folder)},
        "nbgrader": {"db_url": f"sqlite:///{course / 'gradebook.db'}"},
    }
    nb = new_notebook(cells=[new_code_cell(PROBE)])
    try:
        executor = GuardedExecute(config=config)
        nb, _ = executor.preprocess(nb, resources)
    except Exception as error:  # noqa: BLE001 - any failure to run a kernel is the grader's
        detail = f"{type(error).__name__}: {error}"
        what = "tlcourse" if "tlcourse" in str(error) and "No module" in str(error) else "kernel"
        return {"problems": [(what, detail)]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for output in nb.cells[0].get("outputs", []):
        if output.get("output_type") == "stream":
            for line in output.get("text", "").splitlines():
                if line.startswith(REPORT_PREFIX):
                    report = json.loads(line.removeprefix(REPORT_PREFIX))
                    return {**report, "isolation": isolated}
        if output.get("output_type") == "error":
            return {"problems": [("kernel", f"{output.ename}: {output.evalue}")]}
    return {"problems": [("kernel", "the probe cell printed no report")]}


def graders_files_problems(course: Path) -> list[tuple[str, str]]:
    """What is wrong with the data and weights the grader itself reads (its judges, the
    provenance): kernels are shown the course's own view of them, so their probe cannot tell."""
    from tlcourse.weights import read_weights_file, validate_state_dict

    recorded = course_environment(course)
    found = []
    for what, name in (("data", DATA_ENV), ("weights", WEIGHTS_ENV)):
        path = recorded.get(name)
        if not path or not os.path.exists(path):
            found.append((what, f"the grader found nothing at {path}"))
    weights = recorded.get(WEIGHTS_ENV)
    if weights and os.path.isfile(weights):
        try:
            validate_state_dict(read_weights_file(weights), source=weights)
        except Exception as error:  # noqa: BLE001 - whatever is wrong with them, say it
            found.append(("weights", f"the grader's check: {type(error).__name__}: {error}"))
    return found


def config_problems(course: Path) -> list[str]:
    """Preprocessors the course's ``nbgrader_config.py`` names that this tlcourse lacks (a course
    made by an older tlcourse, whose modules have moved since); each with its fix."""
    from traitlets.utils.importstring import import_item

    config = nbgrader_config(course)
    named = [
        *config.Autograde.get("autograde_preprocessors", []),
        *config.GenerateFeedback.get("preprocessors", []),
    ]
    problems = []
    for name in (n for n in named if isinstance(n, str)):
        try:
            import_item(name)
        except (ImportError, AttributeError):
            problems.append(
                f"{course / CONFIG_FILE} names {name}, which this tlcourse does not have (the "
                "course was made by another version), so nobody was graded. Write this "
                f"version's configuration with: tlcourse course init {course} --force"
            )
    return problems


def recorded_files_problems(course: Path) -> list[str]:
    """The course's own grading files (held-out images, the kernels' view of the data) that are
    missing or changed since ``course init`` recorded their sha256; each with its fix."""
    settings = read_settings(course)
    heldout = course / GRADER_DIR / HELDOUT_FILE
    view = Path(kernel_environment(course).get(DATA_ENV, heldout))
    recorded = (
        ("The grader's held-out images", heldout, settings.get("heldout_sha256")),
        ("The graded kernels' view of the data", view, settings.get("kernel_data_sha256")),
    )
    problems = []
    for what, path, expected in recorded:
        if expected is None and path == view:
            continue  # a course made before kernels had their own view of the data
        if not path.exists() or sha256_of(path) != expected:
            state = "is missing" if not path.exists() else "changed since the course was created"
            problems.append(
                f"{what} {path} {state}, so nobody was graded. Recreate them with: "
                f"tlcourse course init {course} --force"
            )
    return problems


def check_environment(course: str | os.PathLike, *, sandboxed: bool = True) -> dict:
    """Run the pre-flight in a process of its own: its report, or a GradingEnvironmentError.

    ``sandboxed=False``: the kernels of the process run without bubblewrap (limits only).
    """
    course = Path(course).resolve()
    changed = config_problems(course) or recorded_files_problems(course)
    if changed:
        raise GradingEnvironmentError(changed[0])
    problems = graders_files_problems(course)
    if problems:
        raise GradingEnvironmentError(environment_message(course, problems))
    command = [sys.executable, "-m", __name__, str(course)]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=PREFLIGHT_SECONDS,
            env=sandbox_environment(sandboxed),
        )
    except subprocess.TimeoutExpired:
        raise GradingEnvironmentError(
            environment_message(course, [("kernel", f"no answer within {PREFLIGHT_SECONDS} s")])
        ) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise GradingEnvironmentError(
            environment_message(course, [("kernel", tail or "no output")])
        )
    report = json.loads(lines[-1])
    if report.get("problems"):
        raise GradingEnvironmentError(
            environment_message(course, [tuple(p) for p in report["problems"]])
        )
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tlcourse.grading.grade.preflight COURSE", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(run_probe(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
