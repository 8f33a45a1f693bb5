"""In the graded kernel: run one test's probe on the grader's inputs and write what it returns.

The grader adds, after each test cell, a cell calling :func:`run`. It finds the test's probe
(:mod:`tlcourse.grading.autotests`), calls it with the notebook's namespace and the inputs the
grader wrote, and writes the plain results (or the error it met) for the grader to judge.
This code runs beside the student's and decides nothing: whatever it writes is judged as data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tlcourse.grading.autotests import find_test
from tlcourse.grading.kernel.exchange import ERROR_KEY, read_arrays, write_arrays

#: Longest error message kept from a probe.
MAX_ERROR_CHARS = 2000


def _namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


def run(assignment: str, grade_id: str, inputs_file: str, result_file: str) -> None:
    """Probe ``grade_id`` of ``assignment``; write its results (or its error) to ``result_file``."""
    test = find_test(assignment, grade_id)
    try:
        if test is None:
            raise LookupError(f"no probe for {grade_id} in {assignment}")
        results = test.probe(_namespace(), read_arrays(Path(inputs_file), limit=2**30))
    except AssertionError as error:
        results = {ERROR_KEY: str(error)[:MAX_ERROR_CHARS]}
    except BaseException as error:  # noqa: BLE001 - whatever the student's code raised
        if isinstance(error, KeyboardInterrupt):
            raise
        results = {ERROR_KEY: f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]}
    try:
        write_arrays(Path(result_file), results)
    except (TypeError, ValueError) as error:
        write_arrays(Path(result_file), {ERROR_KEY: f"the answer is not plain data: {error}"})
