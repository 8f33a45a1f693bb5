"""nbgrader's ``Execute``, hardened: a sandboxed kernel, bounded output, a dead kernel graded.

:class:`GuardedExecute` replaces ``nbgrader.preprocessors.Execute`` in the course's
``Autograde.autograde_preprocessors``. Around nbgrader's own execution it

* starts the kernel in the sandbox (:class:`~tlcourse.grading.sandbox.SandboxKernelManager`,
  whose limits are ``SandboxProvisioner``'s traits), which shows it the course's view of the
  data (the training images only) and the weights read-only and tells it where they are
  (:func:`kernel_view`);
* keeps at most :attr:`max_output_bytes` of each cell's output (gigabytes printed are dropped
  as they arrive, not held in the grader's memory);
* grades a kernel that died (``os._exit``, CPU or memory limit) for the cells that ran before:
  the rest are marked not run, nothing else is lost;
* removes every link the kernel made in the submission's folder, before nbgrader writes there.

Test cells are not decided here: :mod:`~tlcourse.grading.preprocessors.verdicts` judges them
outside the kernel, before and after this preprocessor in the course's pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Integer

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.grading.grade.folders import remove_irregular
from tlcourse.grading.sandbox import SandboxKernelManager, kernel_config
from tlcourse.grading.student.budget import BUDGET_ENV, SEED_ENV

NOT_RUN_ERROR = "KernelStopped"
OUTPUT_CUT_NOTE = "[tlcourse: output cut here: this cell printed more than {} kB]"


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograded test: a code cell nbgrader grades that is not an answer."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def _error(name: str, value: str) -> NotebookNode:
    return new_output("error", ename=name, evalue=value, traceback=[f"{name}: {value}"])


def course_root(resources: dict, cwd: Path) -> Path:
    """The course directory: the gradebook's folder (``autograded/<student>/<assignment>/..``)."""
    url = (resources or {}).get("nbgrader", {}).get("db_url", "")
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).resolve().parent
    return cwd.resolve().parents[2]


def kernel_view(course: Path | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """What a graded kernel reads and is told: ``(read-only binds, environment)``.

    The binds map a path in the sandbox to one on the host, each at its own path: the course's
    view of the data (the training images only, written by ``course init``) and the weights;
    without a course, ``$TLCOURSE_DATA`` and ``$TLCOURSE_WEIGHTS``. The environment names them,
    and gives the grading budget and seed (``$TLCOURSE_BUDGET``, ``$TLCOURSE_SEED``) and
    TensorFlow's log level where the grader has them.
    """
    from tlcourse.grading.grade.course import SETTINGS_FILE, kernel_environment

    recorded = {}
    if course is not None and (course / SETTINGS_FILE).is_file():
        recorded = kernel_environment(course)
    environment = {
        name: str(Path(recorded.get(name) or os.environ[name]).resolve())
        for name in (DATA_ENV, WEIGHTS_ENV)
        if recorded.get(name) or os.environ.get(name)
    }
    read_only = {path: path for path in environment.values()}
    for name in (BUDGET_ENV, SEED_ENV, "TF_CPP_MIN_LOG_LEVEL"):
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return read_only, environment


class GuardedExecute(Execute):
    """Execute a submission in the sandbox; bound its output; grade a dead kernel's cells."""

    max_output_bytes = Integer(
        1_000_000, help="Output kept a cell; the rest is dropped with a note."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        # Output beyond the cap is read and dropped, which can outlast nbclient's 4 s wait for
        # it: wait longer, and grade the cell without what did not arrive.
        kwargs.setdefault("iopub_timeout", 60)
        kwargs.setdefault("raise_on_iopub_timeout", False)
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        """nbclient's kernel manager, its sandbox given this run's :func:`kernel_view`."""
        km = super().create_kernel_manager()
        read_only, environment = kernel_view(getattr(self, "_course", None))
        km.config = kernel_config(self.config, read_only, environment)
        return km

    # ------------------------------------------------------------------ the whole notebook

    def preprocess(self, nb, resources=None, km=None):
        cwd = Path((resources or {}).get("metadata", {}).get("path") or ".")
        self._course = course_root(resources, cwd)
        self._stopped: str | None = None
        self._out_bytes: dict[int, int] = {}
        try:
            return super().preprocess(nb, resources, km)
        finally:
            remove_irregular(cwd)  # links the kernel made: nbgrader writes and copies here next

    # ------------------------------------------------------------------ one cell

    def preprocess_cell(self, cell, resources, index):
        if self._stopped is not None:
            if cell.cell_type == "code":
                cell.outputs = [_error(NOT_RUN_ERROR, f"not run: {self._stopped}")]
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stopped = (
                f"the kernel stopped in cell {index} (the notebook exited the kernel, or "
                "went over the grader's CPU time or memory limit)"
            )
            cell.outputs.append(_error(NOT_RUN_ERROR, f"stopped: {self._stopped}"))
            return cell, resources
        if self._out_bytes.get(index, 0) > self.max_output_bytes:
            note = OUTPUT_CUT_NOTE.format(self.max_output_bytes // 1000)
            cell.outputs.append(new_output("stream", name="stderr", text=note + "\n"))
        return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(
            len(str(value)) for value in content.get("data", {}).values()
        )
        used = self._out_bytes.get(cell_index, 0) + size
        self._out_bytes[cell_index] = used
        if used > self.max_output_bytes:
            return None
        return super().output(outs, msg, display_id, cell_index)
