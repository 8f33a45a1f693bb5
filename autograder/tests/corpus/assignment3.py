"""Assignment 3's corpus (fine-tuning): realistic mistakes and valid alternative solutions."""

from __future__ import annotations

from corpus.mistakes import Mistake
from tlcourse.grading.student import checks

CASES: tuple[Mistake, ...] = (
    Mistake(
        "collapsed-at-1e-1",
        "03-finetuning",
        "config",
        "CONFIG = TrainConfig(experiment='E3', epochs=budget.epochs, learning_rate=1e-1,\n"
        "                     image_size=32, normalization='imagenet', seed=budget.seed)\n",
        {"test_train": 0, "validation_accuracy": 0},
        ("Known mistake: a collapsed run stuck at chance", "use 1e-4", "accuracy. Score: 0 of 6"),
        diagnoses=(checks.COLLAPSED,),
    ),
)
