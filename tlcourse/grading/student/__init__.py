"""What the exercise notebooks import, at home and when graded: the budget, the checks of the
visible test cells, the hand-in of the fine-tuning notebook. Nothing here decides a grade: the
grader judges every test cell in its own process (:mod:`tlcourse.grading.autotests`)."""
