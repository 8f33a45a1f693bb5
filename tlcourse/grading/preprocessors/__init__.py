"""nbgrader preprocessors, named in ``autograder/nbgrader_config.py``: the sandboxed execution
(:mod:`.execute`), the verdicts judged outside the kernel (:mod:`.verdicts`), the feedback
(:mod:`.feedback`). They run in nbgrader's process, never in a student's kernel."""
