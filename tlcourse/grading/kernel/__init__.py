"""Code that runs inside the student's kernel: it turns what the student's code returns into
plain data (arrays, numbers, text) for checks that run somewhere the student cannot reach.

Nothing here decides a grade. At home the notebooks' visible checks call :mod:`record` and then
the check; when graded, :mod:`probe` runs a test's probe on the grader's inputs and writes the
plain results to a file that the grader reads as untrusted data and judges in its own process.
"""
