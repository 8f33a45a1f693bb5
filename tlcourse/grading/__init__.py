"""Auto-graded exercises: the grading budget, the checks the notebooks' tests call, and the
instructor's side (course directory, intake, parallel autograding, accuracy, feedback, export).

Modules, one job each:

* :mod:`~tlcourse.grading.budget`: how much data and how many epochs a notebook uses
  (``$TLCOURSE_BUDGET``: ``grading`` by default, ``full`` at home);
* :mod:`~tlcourse.grading.checks`: checks the notebooks' test cells call; each failure names a
  known mistake and its fix;
* :mod:`~tlcourse.grading.handin`: what the fine-tuning notebook saves for the grader;
* :mod:`~tlcourse.grading.exercises`: student notebooks generated from ``solutions/``;
* :mod:`~tlcourse.grading.course`: an instructor's nbgrader course directory;
* :mod:`~tlcourse.grading.folders`: only regular files of a submission are staged and kept;
* :mod:`~tlcourse.grading.identity`: which student a folder or file belongs to (LMS naming);
* :mod:`~tlcourse.grading.intake`: submissions (``submitted/`` layout or LMS zip files) into it;
* :mod:`~tlcourse.grading.preflight`: a sandboxed kernel that checks the grading environment
  before anyone is graded;
* :mod:`~tlcourse.grading.submission`: grade one submission (autograde, accuracy, feedback);
* :mod:`~tlcourse.grading.accuracy`: the grader's own evaluation of a trained model;
* :mod:`~tlcourse.grading.feedback`: nbgrader preprocessors for the feedback HTML;
* :mod:`~tlcourse.grading.batch`: a class in parallel workers, resumable, with a progress bar;
* :mod:`~tlcourse.grading.export`: the gradebook as CSV;
* :mod:`~tlcourse.grading.cli`: the ``tlcourse grade``, ``course`` and ``exercises`` commands.
"""
