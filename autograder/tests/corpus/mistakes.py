"""Realistic student submissions: each is the solution notebook with cells rewritten.

A :class:`Mistake` names the solution cell (its nbgrader ``grade_id``) and the student's version
of it (``also``: more cells), the points each test cell should then get, the known mistakes the
grader must name (``diagnoses``: every other known mistake must stay unnamed) and text the
feedback must show. A valid alternative solution is a case that loses nothing and names nothing.
Expected scores and diagnoses are decided when a case is written, before it is graded. The
cases live in one module per assignment; the tests build the notebooks with :func:`apply` and
grade them through ``tlcourse grade``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Mistake:
    name: str
    assignment: str
    cell: str
    source: str
    #: Points expected per test cell that loses points (every other test cell: full marks).
    lost: dict[str, float]
    feedback: tuple[str, ...]
    #: Extra grade cells with an expected score that is not the cell's full marks or 0.
    scores: dict[str, float] = field(default_factory=dict)
    #: Known mistakes (``checks.KNOWN_MISTAKES`` names) the feedback must name; no other one.
    diagnoses: tuple[str, ...] = ()
    #: More cells the student rewrote: grade_id -> source.
    also: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """A valid alternative solution: full marks, no mistake named."""
        return not self.lost and not self.diagnoses


def _cases() -> tuple[Mistake, ...]:
    from corpus import assignment1, assignment2, assignment3

    return (*assignment1.CASES, *assignment2.CASES, *assignment3.CASES)


def apply(mistake: Mistake, solution: Path, dest: Path) -> Path:
    """Write the solution notebook with ``mistake``'s cell to ``dest`` (a file path)."""
    nb = nbformat.read(solution, as_version=4)
    for grade_id, source in {mistake.cell: mistake.source, **mistake.also}.items():
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
        if len(cells) != 1:
            raise ValueError(f"{solution.name} has no single cell {grade_id!r}")
        cells[0].source = source
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


MISTAKES: tuple[Mistake, ...] = _cases()
