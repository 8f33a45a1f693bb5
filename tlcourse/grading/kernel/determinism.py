"""In the graded kernel, before the student's first cell: seeded, deterministic TensorFlow.

The grader runs :func:`start` first, so the same submission graded twice computes the same
numbers on the same machine (see :mod:`tlcourse.determinism`). What stays nondeterministic
across machines is said in the instructor page.
"""

from __future__ import annotations

from tlcourse.determinism import seed_everything


def start(seed: int) -> None:
    """Seed everything and switch TensorFlow to deterministic ops."""
    seed_everything(seed)
