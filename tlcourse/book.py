"""What the course book reads at build time: a few real images and the exercises' outlines.

The book's pages (``book/``) compute every number they show; this module holds the helpers
that are not about run records (those are in :mod:`tlcourse.analysis`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.errors import TLCourseError
from tlcourse.imageset import ImageSet


def sample_images(per_class: int = 8, *, split: str = "test") -> ImageSet | None:
    """``per_class`` real CIFAR-10 images of each class, or ``None`` when no copy is found.

    Looks where :func:`tlcourse.data.locate_cifar10` does, without downloading. From an
    image-folder tree only the first ``per_class`` files of each class are decoded.
    """
    from tlcourse.data import load_cifar10, load_image_folder, locate_cifar10, take_per_class

    try:
        found = locate_cifar10(download=False)
    except TLCourseError:
        return None
    try:
        return load_image_folder(
            found, splits=(split,), class_names=CIFAR10_CLASSES, limit_per_class=per_class
        )[split]
    except TLCourseError:
        train, test = load_cifar10(found, download=False)
        images = test if split == "test" else train
        return images.subset(take_per_class(images.labels, per_class, seed=0))


@dataclass(frozen=True)
class ExercisePart:
    """A section of an exercise notebook (a ``##`` heading) and how it is graded."""

    title: str
    points: float
    graded_by: str  # "self-check and hidden tests", "by hand", "the grader's own evaluation"


def _graded_by(cell: dict) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if not meta.get("points"):
        return None
    if cell["cell_type"] == "code":
        return "self-check and hidden tests"
    return "by hand" if meta.get("solution") else "the grader's own evaluation"


def exercise_outline(notebook: str | os.PathLike) -> tuple[str, list[ExercisePart]]:
    """The notebook's title and its parts with their points, from nbgrader's cell metadata."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    title, parts = "", []
    current: dict | None = None
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("# ") and not title:
            title = source.splitlines()[0][2:].strip()
        if cell["cell_type"] == "markdown" and source.startswith("## "):
            current = {"title": source.splitlines()[0][3:].strip(), "points": 0.0, "by": []}
            parts.append(current)
        by = _graded_by(cell)
        if by and current is not None:
            current["points"] += float(cell["metadata"]["nbgrader"]["points"])
            if by not in current["by"]:
                current["by"].append(by)
    outline = [
        ExercisePart(p["title"], p["points"], ", ".join(p["by"]) or "not graded") for p in parts
    ]
    return title, outline


def outline_table(parts: list[ExercisePart]) -> str:
    """The parts of an exercise as a Markdown table, with the total."""
    lines = ["| Part | Points | Graded by |", "|---|---|---|"]
    for part in parts:
        lines.append(f"| {part.title} | {part.points:g} | {part.graded_by} |")
    lines.append(f"| **Total** | **{sum(p.points for p in parts):g}** | |")
    return "\n".join(lines) + "\n"


def book_dir() -> Path:
    """The ``book/`` folder of the checkout this package runs from."""
    return Path(__file__).resolve().parents[1] / "book"


def build(book: str | os.PathLike | None = None, *, strict: bool = True) -> Path:
    """Build the book's HTML with jupyter-book, every page executed; return the HTML folder.

    Every page is read again (``--all``): Sphinx would otherwise skip pages whose source did
    not change, and their numbers would miss new records. ``strict`` turns warnings (a broken
    reference, a cell that raised) into a failed build.
    """
    book = Path(book) if book is not None else book_dir()
    script = Path(sys.executable).with_name("jupyter-book")
    command = [str(script) if script.exists() else "jupyter-book", "build", "--all", str(book)]
    if strict:
        command += ["--warningiserror", "--keep-going"]
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise TLCourseError(
            f"jupyter-book failed (exit status {completed.returncode}): see its output above. "
            f"Command: {' '.join(command)}"
        )
    return book / "_build" / "html"
