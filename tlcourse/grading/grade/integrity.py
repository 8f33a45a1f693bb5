"""Put a submission's graded cells back as released, and say what the student had changed.

nbgrader grades by cell metadata (``grade_id``, points, locked flags) that lives in the
student's file. Before grading, each graded cell of the release is matched by ``grade_id``:

* a test or read-only cell that was deleted is put back where it belongs; one whose source
  was edited gets the released source back (nbgrader's checksums tell an edit);
* every graded cell's metadata (points, flags, cell type) is the release's again; an answer
  cell deleted is put back empty (its tests then fail, as they would have);
* metadata that names a graded cell the release does not have is removed, so a cell cannot
  award itself points; a second copy of a graded cell loses its metadata.

The student's answers are kept as written. Each repair is a note for the feedback and the
instructor's report. The same repair lets a notebook from an older release be graded against
the current tests.
"""

from __future__ import annotations

import copy

from nbformat.notebooknode import NotebookNode

#: The metadata that decides how a cell is graded (nbgrader's checksum and schema aside).
GRADING_KEYS = ("grade", "solution", "locked", "points", "task", "grade_id")
#: Largest notebook graded (one with outputs and figures is a few MB; more is not a notebook).
MAX_NOTEBOOK_BYTES = 20 * 2**20


def _nbgrader(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _graded_id(cell: NotebookNode) -> str | None:
    meta = _nbgrader(cell)
    if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
        return meta.get("grade_id")
    return None


def _is_fixed(meta: dict) -> bool:
    """A cell the student must not change: a test, or read-only, and not an answer."""
    return bool(meta.get("locked") or (meta.get("grade") and not meta.get("solution")))


def _strip(cell: NotebookNode) -> None:
    cell.metadata.pop("nbgrader", None)
    for flag in ("editable", "deletable"):
        cell.metadata.pop(flag, None)


def _grading_meta(cell: NotebookNode) -> dict:
    meta = _nbgrader(cell)
    return {key: meta.get(key) for key in GRADING_KEYS if meta.get(key) not in (None, False)}


def restore_graded_cells(
    nb: NotebookNode, release: NotebookNode, source: NotebookNode | None = None
) -> list[str]:
    """Repair ``nb`` in place against ``release``; notes on what was restored.

    ``source`` is the instructor's version (hidden tests in place): a test cell that matches
    it, as in the solution notebook, was not edited.
    """
    with_hidden = {
        _graded_id(c): c.source for c in (source.cells if source else []) if _graded_id(c)
    }
    notes: list[str] = []
    released = [(i, _graded_id(c), c) for i, c in enumerate(release.cells) if _graded_id(c)]
    wanted = {grade_id for _, grade_id, _ in released}
    found: dict[str, NotebookNode] = {}
    for cell in nb.cells:
        grade_id = _graded_id(cell) or _nbgrader(cell).get("grade_id")
        if not grade_id:
            continue
        if grade_id not in wanted:
            notes.append(
                f"A cell claimed to be graded cell {grade_id!r}, which this assignment does not "
                "have: it was graded as an ordinary cell."
            )
            _strip(cell)
        elif grade_id in found:
            notes.append(f"Graded cell {grade_id!r} appeared twice; the second copy is ungraded.")
            _strip(cell)
        else:
            found[grade_id] = cell
    previous: NotebookNode | None = None
    for _, grade_id, original in released:
        meta = _nbgrader(original)
        cell = found.get(grade_id)
        if cell is None:
            cell = copy.deepcopy(original)
            if original.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            position = nb.cells.index(previous) + 1 if previous is not None else 0
            nb.cells.insert(position, cell)
            what = "test" if _is_fixed(meta) else "answer"
            notes.append(
                f"The {what} cell {grade_id!r} was missing from your notebook: it was put back "
                "as released" + (" (empty)." if what == "answer" else " and graded.")
            )
        else:
            changed = []
            if cell.cell_type != original.cell_type:
                changed.append("cell type")
                cell.cell_type = original.cell_type
                if cell.cell_type == "code":
                    cell.setdefault("outputs", [])
                    cell.setdefault("execution_count", None)
                else:
                    cell.pop("outputs", None)
                    cell.pop("execution_count", None)
            if _is_fixed(meta) and cell.source not in (original.source, with_hidden.get(grade_id)):
                changed.append("source")
                cell.source = original.source
            if _grading_meta(cell) != _grading_meta(original):
                changed.append("grading metadata")
            cell.metadata["nbgrader"] = copy.deepcopy(meta)
            for flag in ("editable", "deletable"):
                if flag in original.metadata:
                    cell.metadata[flag] = original.metadata[flag]
            if changed:
                notes.append(
                    f"The {' and '.join(changed)} of graded cell {grade_id!r} had been changed: "
                    "restored as released before grading."
                )
        previous = cell
    return notes
