"""nbgrader preprocessors for the feedback HTML (named in ``autograder/nbgrader_config.py``).

nbgrader's autograded notebooks carry the hidden tests' source, and so would its feedback:
:class:`HideHiddenTests` removes those regions (nbgrader's own ``ClearHiddenTests``) and cuts
every error in a test cell down to its message, so no traceback quotes a test line.
:class:`GraderNotes` puts the grader's notes (a renamed notebook, a cell that timed out, ...)
at the top, from ``grader-notes.json`` beside the autograded notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool

NOTES_FILE = "grader-notes.json"
HIDDEN_PLACEHOLDER = "# (hidden tests, run by the grader)"


class HideHiddenTests(ClearHiddenTests):
    """Hidden test regions out of the source, test cells' errors down to one line."""

    enforce_metadata = Bool(False).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        # Hidden tests live only in the instructor's test cells; a student's cell that merely
        # contains the marker text is the student's text, left as it is (never an error).
        if cell.cell_type != "code":
            return cell, resources
        if is_grade(cell) and not is_solution(cell):
            before = cell.source
            cell, resources = super().preprocess_cell(cell, resources, cell_index)
            if cell.source != before:
                cell.source = cell.source.rstrip("\n") + "\n" + HIDDEN_PLACEHOLDER
        if is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


class GraderNotes(NbGraderPreprocessor):
    """A first cell listing the grader's notes on this submission, when there are any."""

    def preprocess(self, nb, resources):
        folder = resources.get("metadata", {}).get("path")
        notes_file = Path(folder or ".") / NOTES_FILE
        notes = json.loads(notes_file.read_text()) if notes_file.is_file() else []
        if notes:
            lines = "\n".join(f"- {note}" for note in notes)
            nb.cells.insert(0, new_markdown_cell(f"## Notes from the grader\n\n{lines}"))
        return nb, resources
