"""Attacks on the verdict, written after reading the grader's code (issue: verdicts no submission
can forge). Each pairs a wrong answer with an attempt to make its test pass anyway; the test
is judged in the grader's process, so each loses the points of the wrong answer, and nothing
else. Graded in the same batch as the rest of the hostile corpus.
"""

from __future__ import annotations

from corpus.hostile import (
    WRONG_STANDARDIZE,
    WRONG_TO_UNIT,
    Case,
    answer,
    prefixed,
)

REBIND_CHECKS = (
    "import types\n"
    "_noop = lambda *args, **kwargs: None\n"
    "checks = types.SimpleNamespace(check_unit_scaled=_noop, check_standardized=_noop)\n"
)
NUMPY_CODE = (
    "_true = (lambda *args, **kwargs: True).__code__\n"
    "for _f in (np.allclose, np.array_equal, np.isclose):\n"
    "    for _g in (_f, getattr(_f, '_implementation', None)):\n"
    "        if hasattr(_g, '__code__'):\n"
    "            _g.__code__ = _true\n"
)
CONSTANTS = (
    "import tlcourse.config as _config, tlcourse.preprocessing as _pre\n"
    "import tlcourse.grading.student.checks as _checks\n"
    "for _module in (_config, _pre, _checks):\n"
    "    if hasattr(_module, 'IMAGENET_MEAN'):\n"
    "        _module.IMAGENET_MEAN, _module.IMAGENET_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)\n"
    "IMAGENET_MEAN, IMAGENET_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)\n"
    "def standardize(images):\n"
    "    return np.asarray(images, np.float32) / 255.0\n"
)
SELF_RESTORING = (
    "import numpy as _np\n"
    "_original = _np.array_equal\n"
    "def _lying(*args, **kwargs):\n"
    "    _np.array_equal = _original  # put the real one back on first use: nothing to see\n"
    "    return True\n"
    "def encode_labels(labels):\n"
    "    _np.array_equal = _lying\n"
    "    return _np.eye(10, dtype=_np.float32)[(_np.asarray(labels) + 1) % 10]\n"
)
FORGED_RESULTS = (
    "import os, numpy as _np\n"
    "import tlcourse.grading.kernel.probe as _probe\n"
    "_real = _probe.run\n"
    "def _forge(assignment, grade_id, inputs_file, result_file):\n"
    "    if grade_id != 'test_to_unit':\n"
    "        return _real(assignment, grade_id, inputs_file, result_file)\n"
    "    with _np.load(inputs_file) as given:\n"
    "        images = given['images']\n"
    "    _np.savez(result_file, images=images.astype(_np.float32), extremes=_np.zeros((2, 4, 4, 3),"
    " _np.float32))\n"
    "_probe.run = _forge\n"
    "print('Checked by the grader, on its own inputs: passed.')\n"
    "print('tlcourse-guard:test_to_unit:' + '0' * 64)\n"
)
REBUILD_HELDOUT = (
    "import os\n"
    "from tlcourse.data import load_cifar10\n"
    "_train, _test = load_cifar10(download=False)\n"
    "if len(_test):\n"
    "    print('REBUILT the test set', len(_test))\n"
    "print('data seen by the kernel:', sorted(os.listdir(os.environ['TLCOURSE_DATA'])))\n"
)
FORGED_SCORE = (
    "def to_unit(images):\n"
    "    from IPython import get_ipython\n"
    "    get_ipython().displayhook(2.0)  # an execute_result: nbgrader's partial-credit output\n"
    "    print('Partial credit: 2 of 2 points (the rubric prices this mistake).')\n"
    "    return np.asarray(images).astype(np.float32)\n"
)
MARKER_TEXT = (
    "# ### BEGIN HIDDEN TESTS  (a student's note)\n# ### END HIDDEN TESTS\n# ### BEGIN SOLUTION\n"
)

FORGERIES: tuple[Case, ...] = (
    Case(
        "checks-rebound",
        "the name `checks` rebound to no-op functions",
        answer("to_unit", REBIND_CHECKS + WRONG_TO_UNIT),
        8,
        ("Known mistake: data not normalised",),
        defence="the verdict never calls the kernel's `checks`",
    ),
    Case(
        "numpy-code",
        "numpy's comparison functions' code (and _implementation) replaced",
        answer("standardize", NUMPY_CODE + WRONG_STANDARDIZE),
        8,
        ("Known mistake: data not standardised",),
        defence="the grader's numpy is its own",
    ),
    Case(
        "constants",
        "the library's IMAGENET_MEAN and IMAGENET_STD set to 0 and 1",
        answer("standardize", CONSTANTS),
        6,  # the library's pipeline in the kernel now standardises wrongly too
        ("test_standardize): Known mistake: data not standardised", "test_make_pipeline"),
        defence="the grader's constants are its own",
    ),
    Case(
        "self-restoring-fake",
        "a lying np.array_equal that puts the real one back on first use",
        answer("encode_labels", SELF_RESTORING),
        9,  # every label shifted by one: a slip the rubric prices at 1 of 2
        ("Known mistake: labels off by one",),
        defence="the grader's numpy is its own",
    ),
    Case(
        "forged-results",
        "the probe replaced, its result file and the pass text forged",
        answer("to_unit", FORGED_RESULTS + WRONG_TO_UNIT),
        8,
        ("Known mistake: data not normalised",),
        defence="a forged result is still judged as data: wrong values fail",
    ),
    Case(
        "forged-partial-score",
        "a score published from the test cell as nbgrader's partial-credit output",
        answer("to_unit", FORGED_SCORE),
        8,
        ("Known mistake: data not normalised",),
        defence="a judged cell's own results are shown as display data; only the verdict scores",
    ),
    Case(
        "rebuild-heldout",
        "rebuilding the held-out images from the data the kernel sees",
        prefixed("to_unit", REBUILD_HELDOUT),
        10,
        absent=("REBUILT",),
        defence="kernels see the training images only: the test set is empty there",
    ),
    Case(
        "marker-text",
        "nbgrader's marker text in an answer cell",
        prefixed("to_unit", MARKER_TEXT),
        10,
        defence="markers count only in the instructor's cells",
    ),
)
