"""The budget a notebook trains under: ``grading`` (small, the default) or ``full`` (at home).

Notebooks call :func:`current_budget` and never hard-code sizes, so the grader runs every
submission under the same small budget while students can run the study's protocol at home
with ``TLCOURSE_BUDGET=full``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tlcourse.reproduce import BUDGETS

#: Environment variable naming the budget: ``grading`` (default) or ``full``.
BUDGET_ENV = "TLCOURSE_BUDGET"
#: Environment variable overriding the seed of data choice, split and training (calibration).
SEED_ENV = "TLCOURSE_SEED"
#: Budget names and the library budget each one uses.
GRADING_BUDGETS: dict[str, str] = {"grading": "smoke", "full": "paper"}
DEFAULT_BUDGET = "grading"


@dataclass(frozen=True)
class GradingBudget:
    """Sizes and epochs of a notebook run; ``None`` per class means every image."""

    name: str
    epochs: int
    train_per_class: int | None
    test_per_class: int | None
    seed: int

    @property
    def val_fraction(self) -> float:
        return 0.2


def current_budget() -> GradingBudget:
    """The budget named by ``$TLCOURSE_BUDGET`` (default ``grading``), seed ``$TLCOURSE_SEED``."""
    name = os.environ.get(BUDGET_ENV, "").strip() or DEFAULT_BUDGET
    if name not in GRADING_BUDGETS:
        raise ValueError(
            f"${BUDGET_ENV} must be one of {', '.join(GRADING_BUDGETS)} ('grading': the small "
            f"budget the grader uses; 'full': the study's protocol). Received: {name!r}"
        )
    seed_text = os.environ.get(SEED_ENV, "").strip() or "0"
    try:
        seed = int(seed_text)
    except ValueError:
        raise ValueError(f"${SEED_ENV} must be an integer. Received: {seed_text!r}") from None
    library = BUDGETS[GRADING_BUDGETS[name]]
    return GradingBudget(
        name=name,
        epochs=library.epochs,
        train_per_class=library.train_per_class,
        test_per_class=library.test_per_class,
        seed=seed,
    )
