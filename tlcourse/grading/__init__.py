"""Auto-graded exercises, arranged by where each piece of code runs.

* :mod:`~tlcourse.grading.student`: what the notebooks import, at home and when graded: the
  grading budget (``$TLCOURSE_BUDGET``), the checks of the visible test cells (each failure
  names a known mistake and its fix), and what the fine-tuning notebook hands in;
* :mod:`~tlcourse.grading.kernel`: what runs inside a graded kernel beside the student's code:
  the probes that record the student's answers on the grader's inputs as plain data;
* :mod:`~tlcourse.grading.autotests`: each assignment's tests: a probe (in the kernel) and a
  judge (in the grader's process) for every test cell;
* :mod:`~tlcourse.grading.preprocessors`: nbgrader preprocessors named in
  ``autograder/nbgrader_config.py``: the sandboxed execution, the verdicts judged outside the
  kernel, the feedback;
* :mod:`~tlcourse.grading.sandbox`: the bubblewrap sandbox every graded kernel starts in (a
  jupyter_client kernel provisioner);
* :mod:`~tlcourse.grading.grade`: the instructor's side: the course directory, intake of
  submissions, the pre-flight, one submission graded in a process of its own, the class in
  parallel (resumable), the grader's own accuracy, the gradebook's export;
* :mod:`~tlcourse.grading.exercises`: student notebooks generated from ``solutions/``;
* :mod:`~tlcourse.grading.cli`: the ``tlcourse grade``, ``course`` and ``exercises`` commands.
"""
