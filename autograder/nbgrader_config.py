"""nbgrader configuration of the tlcourse course.

``tlcourse course init DIR`` copies this file into an instructor's course directory; nbgrader's
own commands (``nbgrader autograde``, ``generate_feedback``, ``export``) read it there, as does
``tlcourse grade``. ``tlcourse-course.json`` beside it (written by ``course init``) says where
CIFAR-10 and the SqueezeNet weights are (absolute paths), so graded kernels find them without
internet, wherever the command was started.
"""

import json
import os
from pathlib import Path

c = get_config()  # noqa: F821 (defined by traitlets when it reads this file)

c.CourseDirectory.course_id = "tlcourse"

# The notebooks read the budget from $TLCOURSE_BUDGET: "grading" (300 images a class, 4 epochs)
# unless the instructor exported "full" (the study's protocol; hours, not seconds).
os.environ.setdefault("TLCOURSE_BUDGET", "grading")

# Where CIFAR-10 and the weights are: the absolute paths `course init` recorded beside this file.
# They win over the shell's TLCOURSE_DATA/TLCOURSE_WEIGHTS, so that a grade never depends on
# where a command was started or what was exported there.
_here = Path(globals().get("__file__") or Path.cwd() / "nbgrader_config.py").resolve().parent
_settings = _here / "tlcourse-course.json"
if _settings.is_file():
    os.environ.update(json.loads(_settings.read_text()).get("environment", {}))

# Graded kernels: the Python 3 kernel of the environment nbgrader runs in, at most 180 s a cell
# (assignment 3's training cell takes under a minute under the grading budget on 2 cores).
c.Execute.kernel_name = "python3"
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True

# Feedback: nbgrader's preprocessors, then tlcourse's: hidden tests' source and tracebacks out,
# the grader's notes (renamed notebook, timed-out cell, ...) in.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "tlcourse.grading.preprocessors.feedback.HideHiddenTests",
    "tlcourse.grading.preprocessors.feedback.GraderNotes",
]

# Execution: nbgrader's Execute, hardened (tlcourse.grading.preprocessors.execute). Each
# kernel runs in the bubblewrap sandbox (no network, no course directory, everything read-only
# but the submission's folder) with the limits below; a cell keeps at most 1 MB of output.
# Test cells are judged outside the kernel (tlcourse.grading.preprocessors.verdicts):
# ProbeTests adds, after each test cell, a cell that records the student's answers on the
# grader's inputs as plain data; JudgeTests checks that data in the grader's own process, and
# its verdict alone gives the cell's points.
c.Autograde.autograde_preprocessors = [
    "tlcourse.grading.preprocessors.verdicts.ProbeTests",
    "tlcourse.grading.preprocessors.execute.GuardedExecute",
    "tlcourse.grading.preprocessors.verdicts.JudgeTests",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.SandboxProvisioner.cpu_seconds = 900
c.SandboxProvisioner.memory_mb = 6144
c.SandboxProvisioner.processes = 256
c.GuardedExecute.max_output_bytes = 1_000_000
