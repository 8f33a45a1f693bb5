"""nbgrader preprocessors that decide test cells outside the student's kernel.

:class:`ProbeTests` runs before :class:`~.execute.GuardedExecute`: for every test cell the
grader has a judge for (:mod:`tlcourse.grading.autotests`), it writes the grader's inputs into
the submission's folder, takes the hidden tests out of the cell (they never reach the kernel),
and adds after it a cell that runs the test's probe
(:mod:`tlcourse.grading.kernel.probe`); a first cell makes the run seeded and deterministic
(:mod:`tlcourse.grading.kernel.determinism`). :class:`JudgeTests` runs after the execution: it
removes those cells, reads each probe's results as untrusted data and judges them here, in the
grader's process, on its own copy of the inputs. A judged test cell keeps what it printed in
the notebook (stderr and errors turned into text: warnings and progress bars never cost
points), but its points follow the judge alone: a passed judgement leaves no error in the cell;
a failure that the test's rubric prices as a known mistake leaves its message and the points
kept (nbgrader's partial credit, an ``execute_result`` holding the score); any other failure is
the cell's one error, with its reason (nbgrader then gives 0).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import NbGraderPreprocessor

from tlcourse.grading.autotests import JudgeContext, registry
from tlcourse.grading.kernel import determinism, probe
from tlcourse.grading.kernel.exchange import (
    ERROR_KEY,
    FOLDER,
    INPUTS_FILE,
    read_arrays,
    result_name,
    write_arrays,
)
from tlcourse.grading.preprocessors.execute import is_test_cell
from tlcourse.grading.student.checks import Mistake

_STATE = "tlcourse_verdicts"
_HIDDEN = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S
)
PASSED_NOTE = "Checked by the grader, on its own inputs: passed.\n"
PARTIAL_NOTE = "Partial credit: {score:g} of {points:g} points (the rubric prices this mistake).\n"
NOTEBOOK_ERROR_NOTE = "In the notebook this cell stopped with {}: {}\n"
#: How a verdict that could not be reached begins (the instructor's report lists these).
NOT_CHECKED = "The grader could not check this test: "
#: Errors the grader itself puts in a cell (a time limit, a dead kernel): kept as they are.
GRADER_ERRORS = ("CellTimeoutError", "KeyboardInterrupt", "TimeoutError", "KernelStopped")


def _folder(resources: dict) -> Path:
    return Path((resources or {}).get("metadata", {}).get("path") or ".").resolve()


def judge_context(resources: dict) -> JudgeContext:
    """What the judges know: the grader's data and weights, the budget, the course's seed."""
    from tlcourse.config import DATA_ENV, WEIGHTS_ENV
    from tlcourse.grading.grade.course import SETTINGS_FILE, read_settings
    from tlcourse.grading.preprocessors.execute import course_root, kernel_view
    from tlcourse.grading.student.budget import current_budget

    course = course_root(resources, _folder(resources))
    settings = read_settings(course) if (course / SETTINGS_FILE).is_file() else {}
    _, shown = kernel_view(course)  # the training images and weights the kernels see
    path = lambda name: Path(shown[name]) if shown.get(name) else None  # noqa: E731
    return JudgeContext(
        data=path(DATA_ENV),
        weights=path(WEIGHTS_ENV),
        budget=current_budget(),
        seed=int(settings.get("judge_seed", 0)),
    )


def _probe_cell(assignment: str, grade_id: str, folder: Path):
    files = (str(folder / INPUTS_FILE), str(folder / result_name(grade_id)))
    arguments = (assignment, grade_id, *files)
    cell = new_code_cell(
        f"import {probe.__name__} as _tlcourse_probe\n"
        f"_tlcourse_probe.run{arguments!r}\n"
        "del _tlcourse_probe"
    )
    cell.metadata["tlcourse_probe"] = grade_id
    return cell


def _start_cell(seed: int):
    """The graded run's first cell: seeded, deterministic TensorFlow (removed after the run)."""
    cell = new_code_cell(
        f"import {determinism.__name__} as _tlcourse_start\n"
        f"_tlcourse_start.start({int(seed)})\n"
        "del _tlcourse_start"
    )
    cell.metadata["tlcourse_probe"] = "start"
    return cell


def _fresh_folder(folder: Path) -> None:
    """An empty exchange folder made by the grader (whatever the submission put there goes)."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(mode=0o755)


class ProbeTests(NbGraderPreprocessor):
    """Before execution: inputs out, hidden tests out, a probe cell after each judged test."""

    def preprocess(self, nb, resources):
        assignment = registry().get(resources.get("nbgrader", {}).get("assignment", ""))
        if assignment is None:
            return nb, resources
        context = judge_context(resources)
        inputs = assignment.inputs(context)
        folder = _folder(resources) / FOLDER
        _fresh_folder(folder)
        write_arrays(folder / INPUTS_FILE, inputs)
        sources, cells = {}, []
        for cell in nb.cells:
            cells.append(cell)
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in assignment.tests and is_test_cell(cell):
                sources[grade_id] = cell.source
                cell.source = _HIDDEN.sub("", cell.source)
                cells.append(_probe_cell(assignment.name, grade_id, folder))
        nb.cells = [_start_cell(context.budget.seed), *cells]
        resources[_STATE] = {
            "assignment": assignment,
            "context": context,
            "inputs": inputs,
            "sources": sources,
            "folder": folder,
        }
        return nb, resources


@dataclass(frozen=True)
class Failure:
    """Why a test did not pass; ``mistake`` is the known mistake the grader's judge named."""

    message: str
    mistake: str | None = None


def verdict(
    test, result_file: Path, inputs, context: JudgeContext, stopped: str = ""
) -> Failure | None:
    """``None`` when the test passes, else the :class:`Failure` that says why it did not.

    ``stopped`` says what ended the probe's cell early, when something did (a time limit). Only
    the judge, in this process, names a mistake: whatever the kernel wrote is a plain message.
    """
    try:
        results = read_arrays(result_file)
    except FileNotFoundError:
        why = f" ({stopped})" if stopped else ""
        return Failure(
            f"{NOT_CHECKED}running the answers on the grader's inputs did not finish{why}; "
            "the notebook stopped, or was stopped, before that."
        )
    except ValueError as error:
        return Failure(f"{NOT_CHECKED}what the notebook returned could not be read: {error}.")
    if ERROR_KEY in results:
        return Failure(str(results[ERROR_KEY]))
    try:
        test.judge(results, inputs, context)
    except Mistake as error:
        return Failure(str(error), error.name)
    except AssertionError as error:
        return Failure(str(error) or "the answer is wrong")
    except KeyError as error:
        return Failure(f"The grader found no {error} in what the notebook returned.")
    except Exception as error:  # noqa: BLE001 - untrusted data may break a check in any way
        return Failure(f"The answer could not be checked ({type(error).__name__}: {error}).")
    return None


def verdict_outputs(test, points: float, failure: Failure | None) -> list:
    """The outputs that give a judged cell its points: a note, a partial score or an error."""
    if failure is None:
        return [new_output("stream", name="stdout", text=PASSED_NOTE)]
    score = test.score(points, failure.mistake)
    if score > 0:
        note = failure.message + "\n" + PARTIAL_NOTE.format(score=score, points=points)
        return [
            new_output("stream", name="stdout", text=note),
            new_output("execute_result", data={"text/plain": repr(score)}, execution_count=None),
        ]
    message = failure.message
    return [new_output("error", ename="AssertionError", evalue=message, traceback=[message])]


def _shown(cell) -> list:
    """A judged cell's own outputs, with errors and stderr turned into plain text."""
    kept = []
    for output in cell.get("outputs", []):
        if output.output_type == "error" and output.get("ename") in GRADER_ERRORS:
            kept.append(output)
        elif output.output_type == "error":
            text = NOTEBOOK_ERROR_NOTE.format(output.get("ename"), output.get("evalue"))
            kept.append(new_output("stream", name="stdout", text=text))
        elif output.output_type == "stream" and output.name == "stderr":
            kept.append(new_output("stream", name="stdout", text=output.text))
        elif output.output_type == "execute_result":  # nbgrader would read it as a score
            kept.append(new_output("display_data", data=output.data, metadata=output.metadata))
        else:
            kept.append(output)
    return kept


class JudgeTests(NbGraderPreprocessor):
    """After execution: probe cells out, each judged test decided here, its source back."""

    def preprocess(self, nb, resources):
        state = resources.pop(_STATE, None)
        if state is None:
            return nb, resources
        stopped = {
            cell.metadata["tlcourse_probe"]: f"{error.get('ename')}: {error.get('evalue')}"
            for cell in nb.cells
            if "tlcourse_probe" in cell.metadata
            for error in cell.get("outputs", [])
            if error.get("output_type") == "error"
        }
        nb.cells = [cell for cell in nb.cells if "tlcourse_probe" not in cell.metadata]
        tests = state["assignment"].tests
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id not in state["sources"]:
                continue
            cell.source = state["sources"][grade_id]
            file = state["folder"] / result_name(grade_id)
            test = tests[grade_id]
            failure = verdict(
                test, file, state["inputs"], state["context"], stopped.get(grade_id, "")
            )
            points = float(cell.metadata["nbgrader"]["points"])
            cell.outputs = _shown(cell) + verdict_outputs(test, points, failure)
        shutil.rmtree(state["folder"], ignore_errors=True)
        return nb, resources
