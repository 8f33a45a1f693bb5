"""nbgrader's ``Execute``, hardened: sandboxed kernel, guarded test cells, bounded output.

:class:`GuardedExecute` replaces ``nbgrader.preprocessors.Execute`` in the course's
``Autograde.autograde_preprocessors``. Around nbgrader's own execution it

* starts the kernel in the sandbox (:class:`~tlcourse.grading.sandbox.SandboxKernelManager`,
  whose limits are ``SandboxProvisioner``'s traits), which shows it the course's data and
  weights read-only and tells it where they are (:func:`kernel_view`);
* runs a first cell that starts a :class:`~tlcourse.grading.guard.Guard` before any student
  code, and wraps each test cell so that it passes only if it ran to its end untampered and
  printed its token (checked here, outside the kernel; the tokens are then removed);
* keeps at most :attr:`max_output_bytes` of each cell's output (gigabytes printed are dropped
  as they arrive, not held in the grader's memory);
* grades a kernel that died (``os._exit``, CPU or memory limit) for the cells that ran before:
  the rest are marked not run, nothing else is lost.

The notebook nbgrader saves has the test cells' own source back and no guard cell.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Integer

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.grading.budget import BUDGET_ENV, SEED_ENV
from tlcourse.grading.folders import remove_irregular
from tlcourse.grading.guard import TOKEN_PREFIX, token
from tlcourse.grading.sandbox import SandboxKernelManager, kernel_config

GUARD_NAME = "__tlcourse_guard__"
INTEGRITY_ERROR = "GradingIntegrityError"
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


def kernel_view() -> tuple[dict[str, str], dict[str, str]]:
    """What a graded kernel reads and is told: ``(read-only binds, environment)``.

    The binds map a path in the sandbox to one on the host: the grader's data folder
    (``$TLCOURSE_DATA``) and weights file (``$TLCOURSE_WEIGHTS``), each at its own path. The
    environment names them, and gives the grading budget and seed (``$TLCOURSE_BUDGET``,
    ``$TLCOURSE_SEED``) and TensorFlow's log level where the grader has them.
    """
    environment = {
        name: str(Path(os.environ[name]).resolve())
        for name in (DATA_ENV, WEIGHTS_ENV)
        if os.environ.get(name)
    }
    read_only = {path: path for path in environment.values()}
    for name in (BUDGET_ENV, SEED_ENV, "TF_CPP_MIN_LOG_LEVEL"):
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return read_only, environment


class GuardedExecute(Execute):
    """Execute a submission in the sandbox, with each test cell's pass checked out here."""

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
        read_only, environment = kernel_view()
        km.config = kernel_config(self.config, read_only, environment)
        return km

    # ------------------------------------------------------------------ the whole notebook

    def preprocess(self, nb, resources=None, km=None):
        cwd = Path((resources or {}).get("metadata", {}).get("path") or ".")
        key = secrets.token_bytes(32)
        key_file = cwd / f".tlcourse-guard-{secrets.token_hex(8)}"
        key_file.write_bytes(key)
        sources = {}
        for index, cell in enumerate(nb.cells):
            if is_test_cell(cell):
                grade_id = cell.metadata.nbgrader.grade_id
                sources[index] = cell.source
                cell.source = (
                    f"{GUARD_NAME}.enter({grade_id!r})\n{cell.source}\n"
                    f"{GUARD_NAME}.leave({grade_id!r})"
                )
        nb.cells.insert(
            0,
            new_code_cell(
                "import tlcourse.grading.guard as _tlcourse_guard\n"
                f"{GUARD_NAME} = _tlcourse_guard.Guard.start({str(key_file.resolve())!r})\n"
                "del _tlcourse_guard"
            ),
        )
        self._stopped: str | None = None
        self._out_bytes: dict[int, int] = {}
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            key_file.unlink(missing_ok=True)
            remove_irregular(cwd)  # links the kernel made: nbgrader writes and copies here next
        guard_cell = nb.cells.pop(0)
        failed = [o for o in guard_cell.get("outputs", []) if o.output_type == "error"]
        if failed:
            raise RuntimeError(
                f"The grader's guard cell failed ({failed[0].ename}: {failed[0].evalue}); "
                "nothing of the student's was graded. Check the grading environment."
            )
        for index, cell in enumerate(nb.cells):
            if index in sources:
                self._check_token(cell, key)
                cell.source = sources[index]
        return nb, resources

    def _check_token(self, cell: NotebookNode, key: bytes) -> None:
        """Pass only a test cell that printed its own token; remove every token line."""
        grade_id = cell.metadata.nbgrader.grade_id
        expected, seen = token(key, grade_id), False
        for output in cell.outputs:
            if output.output_type == "stream" and TOKEN_PREFIX in output.text:
                lines = output.text.splitlines(keepends=True)
                seen = seen or any(line.strip() == expected for line in lines)
                output.text = "".join(line for line in lines if TOKEN_PREFIX not in line)
        cell.outputs = [o for o in cell.outputs if o.output_type != "stream" or o.text]
        if not seen and not any(o.output_type == "error" for o in cell.outputs):
            cell.outputs.append(
                _error(
                    INTEGRITY_ERROR,
                    "this test did not run to its end as written (its code was changed, "
                    "skipped or silenced while it ran), so it scores 0.",
                )
            )

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
