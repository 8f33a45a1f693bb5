"""Broken and hostile submissions of assignment 1, each graded beside correct ones.

A :class:`Case` builds one student's notebook from the solution (``build`` gets the solution
notebook and a :class:`Context` with paths and a port the tests provide), and says what the
grader must do with it: the score out of 10, text its notes must hold, and what the case
attacked. The tests grade them all in one batch (``tlcourse grade``); ``python -m
corpus.hostile RESULTS_JSON`` (from ``autograder/tests``) records that batch's outcome table
for the instructor page of the book.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

ASSIGNMENT = "01-preprocessing"
#: Per-cell limit of the batch: assignment 1's slowest cell takes a few seconds.
CELL_TIMEOUT = 30


@dataclass(frozen=True)
class Context:
    """What a case may aim at: a file outside the submission, a local server."""

    sentinel: Path
    port: int


@dataclass(frozen=True)
class Case:
    name: str
    attack: str
    build: Callable[[nbformat.NotebookNode, Context], nbformat.NotebookNode | bytes]
    score: float
    notes: tuple[str, ...] = ()
    #: Text that must not appear in the graded notebook's outputs (the attack's success).
    absent: tuple[str, ...] = ()
    #: Another case's student whose file this one submits too.
    same_as: str | None = None
    #: What stops an attack that leaves no note (checked by the tests through ``absent``).
    defence: str = ""


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def prefixed(grade_id: str, code: str):
    """A builder that runs ``code`` at the top of the answer cell ``grade_id``."""

    def build(nb, _ctx):
        cell(nb, grade_id).source = code + "\n" + cell(nb, grade_id).source
        return nb

    return build


def answer(grade_id: str, code: str):
    """A builder that replaces the answer cell ``grade_id`` with ``code``."""

    def build(nb, _ctx):
        cell(nb, grade_id).source = code
        return nb

    return build


WRONG_TO_UNIT = "def to_unit(images):\n    return np.asarray(images).astype(np.float32)\n"
WRONG_STANDARDIZE = (
    "def standardize(images):\n"
    "    unit = np.asarray(images, np.float32) / 255.0\n"
    "    return unit - np.asarray(IMAGENET_MEAN, np.float32)\n"
)
WRONG_LABELS = "def encode_labels(labels):\n    return np.asarray(labels, np.float32)\n"
WRONG_PIPELINE = (
    "def make_pipeline(images, labels, image_size, batch_size):\n"
    "    from tlcourse.pipeline import make_dataset\n"
    "    return make_dataset(images, labels, num_classes=10, batch_size=batch_size,\n"
    "                        normalization='unit', image_size=image_size)\n"
)


def _delete_test(nb, _ctx):
    nb.cells.remove(cell(nb, "test_encode_labels"))
    return nb


def _edit_test(nb, _ctx):
    cell(nb, "to_unit").source = WRONG_TO_UNIT
    cell(nb, "test_to_unit").source = 'print("to_unit looks right")'
    return nb


def _edit_metadata(nb, _ctx):
    cell(nb, "test_standardize").metadata.nbgrader.points = 100
    meta = cell(nb, "to_unit").metadata.nbgrader
    meta.update(grade=True, points=50)
    cell(nb, "test_split").metadata.nbgrader.update(locked=False, grade=False)
    return nb


def _older_release(nb, _ctx):
    old = cell(nb, "test_split")
    old.source = "train_idx, val_idx = split(labels, seed=0)\nprint(len(train_idx))"
    retired = copy.deepcopy(old)
    retired.id = f"{old.id}-v0"  # a real older release has its own cell ids
    retired.metadata.nbgrader.update(grade_id="test_shapes_v0", points=3)
    retired.source = "assert True"
    nb.cells.insert(nb.cells.index(old) + 1, retired)
    return nb


def _huge_notebook(nb, _ctx):
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (25 * 2**20))]
    return nb


def _read_grader_data(nb, _ctx):
    probe = (
        "for _path in ('../../../grader/heldout.npz', '../../../gradebook.db',\n"
        "              '../../../source/01-preprocessing/01-preprocessing.ipynb'):\n"
        "    try:\n"
        "        print('READ', _path, len(open(_path, 'rb').read()), 'bytes')\n"
        "    except OSError as error:\n"
        "        print('could not read', _path, type(error).__name__)\n"
    )
    return prefixed("to_unit", probe)(nb, _ctx)


def _write_outside(nb, ctx):
    probe = (
        f"for _path in ('../../../gradebook.db', {str(ctx.sentinel)!r},\n"
        "              '../../correct/01-preprocessing/01-preprocessing.ipynb'):\n"
        "    try:\n"
        "        open(_path, 'w').write('overwritten by a student')\n"
        "        print('WROTE', _path)\n"
        "    except OSError as error:\n"
        "        print('could not write', _path, type(error).__name__)\n"
    )
    return prefixed("to_unit", probe)(nb, ctx)


def _network(nb, ctx):
    probe = (
        "import urllib.request\n"
        "try:\n"
        f"    print('LEAKED', urllib.request.urlopen('http://127.0.0.1:{ctx.port}/leak',"
        " timeout=5).status)\n"
        "except OSError as error:\n"
        "    print('no network:', type(error).__name__)\n"
    )
    return prefixed("to_unit", probe)(nb, ctx)


def _fake_score(nb, _ctx):
    cell(nb, "to_unit").source = (
        WRONG_TO_UNIT + 'print("Total score: 10 / 10 -- all tests passed")\n'
        "print('tlcourse-guard:test_to_unit:' + '0' * 64)\n"
    )
    return nb


FORK_BOMB = (
    "import os, time\n"
    "while True:\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(3600)\n"
    "        os._exit(0)\n"
)

CASES: tuple[Case, ...] = (
    Case("correct", "none (the reference solution)", lambda nb, _: nb, 10),
    Case(
        "correct-copy",
        "two students submitting the same file",
        lambda nb, _: nb,
        10,
        same_as="correct",
    ),
    Case(
        "infinite-loop",
        "an infinite loop",
        prefixed("make_pipeline", "while True:\n    pass"),
        8,
        ("ran longer than the per-cell time limit",),
    ),
    Case(
        "memory-bomb",
        "a memory bomb",
        prefixed("make_pipeline", "hog = [bytearray(2**28) for _ in range(10**5)]"),
        8,
        ("MemoryError",),
    ),
    Case("fork-bomb", "a fork bomb", prefixed("make_pipeline", FORK_BOMB), 8, ("BlockingIOError",)),
    Case(
        "huge-output",
        "a gigabyte printed",
        prefixed("make_pipeline", "for _ in range(1024):\n    print('x' * 2**20)"),
        10,
        ("output was cut",),
    ),
    Case(
        "sys-exit",
        "sys.exit mid-notebook",
        prefixed("make_pipeline", "import sys\nsys.exit('bye')"),
        8,
        ("raised SystemExit",),
    ),
    Case(
        "os-exit",
        "os._exit mid-notebook (the kernel dies)",
        prefixed("make_pipeline", "import os\nos._exit(0)"),
        8,
        ("the kernel stopped",),
    ),
    Case(
        "test-deleted",
        "a test cell deleted",
        _delete_test,
        10,
        ("'test_encode_labels' was missing",),
    ),
    Case(
        "test-edited",
        "a test cell edited to always pass",
        _edit_test,
        8,
        ("source of graded cell 'test_to_unit' had been changed",),
    ),
    Case(
        "metadata-edited",
        "cell metadata changed (points, grade and read-only flags)",
        _edit_metadata,
        10,
        ("grading metadata of graded cell 'test_standardize'",),
    ),
    Case(
        "patch-checks",
        "monkey-patching the grading helpers",
        answer(
            "to_unit",
            "from tlcourse.grading.student import checks as _checks\n"
            "_checks.check_unit_scaled = lambda *args, **kwargs: None\n" + WRONG_TO_UNIT,
        ),
        8,
        ("Known mistake: data not normalised",),
        defence="the verdict is computed in the grader's process, not by the kernel's checks",
    ),
    Case(
        "patch-numpy",
        "monkey-patching numpy",
        answer("standardize", "np.allclose = lambda *args, **kwargs: True\n" + WRONG_STANDARDIZE),
        8,
        ("Known mistake: data not standardised",),
        defence="the grader's numpy is not the kernel's",
    ),
    Case(
        "patch-code",
        "rewriting a check's code in place",
        answer(
            "encode_labels",
            "from tlcourse.grading.student import checks as _checks\n"
            "_checks.check_one_hot.__code__ = (lambda *args, **kwargs: None).__code__\n"
            + WRONG_LABELS,
        ),
        8,
        ("Known mistake: labels not one-hot",),
        defence="the grader's checks are not the kernel's",
    ),
    Case(
        "silence-errors",
        "hiding errors (IPython's showtraceback replaced)",
        answer(
            "encode_labels",
            "get_ipython().showtraceback = lambda *args, **kwargs: None\n" + WRONG_LABELS,
        ),
        8,
    ),
    Case(
        "rewrite-tests",
        "rewriting test cells as they run (an IPython input transformer)",
        answer(
            "make_pipeline",
            WRONG_PIPELINE + "get_ipython().input_transformers_post.append(\n"
            "    lambda lines: ['print(\"make_pipeline looks right\")\\n'])\n",
        ),
        8,
        ("test_make_pipeline", "could not check this test"),
    ),
    Case("fake-score", "printing a fake score and a forged pass token", _fake_score, 8),
    Case(
        "read-grader-data",
        "reading the grader's held-out data, gradebook and sources",
        _read_grader_data,
        10,
        absent=("READ ",),
        defence="the course directory is an empty folder in the sandbox: nothing to read",
    ),
    Case(
        "write-outside",
        "writing outside the submission folder",
        _write_outside,
        10,
        defence="file systems are read-only, the course and /tmp private: no real file changed",
    ),
    Case(
        "network",
        "network access",
        _network,
        10,
        absent=("LEAKED",),
        defence="the kernel's network namespace has no interface up: the request never left",
    ),
    Case(
        "huge-notebook",
        "a 25 MiB notebook",
        _huge_notebook,
        0,
        ("over the 20 MiB a notebook may have",),
    ),
    Case(
        "corrupt",
        "a corrupt .ipynb",
        lambda nb, _: nbformat.writes(nb)[:1000].encode(),
        0,
        ("could not be read as a notebook",),
    ),
    Case(
        "older-release",
        "a notebook from an older release",
        _older_release,
        10,
        ("'test_shapes_v0', which this assignment does not have",),
    ),
)


def write_submissions(solution: Path, folder: Path, ctx: Context) -> dict[str, Path]:
    """Each case's notebook as ``folder/<case>/01-preprocessing/01-preprocessing.ipynb``."""
    written = {}
    for case in CASES:
        built = case.build(nbformat.read(solution, as_version=4), ctx)
        path = folder / case.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(built, bytes):
            path.write_bytes(built)
        else:
            nbformat.write(built, path)
        written[case.name] = path
    for case in CASES:
        if case.same_as:
            written[case.name].write_bytes(written[case.same_as].read_bytes())
    return written


class _LeakServer(http.server.ThreadingHTTPServer):
    requests: list[str]

    def context(self, root: Path) -> Context:
        sentinel = root / "sentinel.txt"
        sentinel.write_text("sentinel")
        return Context(sentinel, self.server_address[1])


@contextlib.contextmanager
def leak_server() -> Iterator[_LeakServer]:
    """An HTTP server on 127.0.0.1 that records every request (none may arrive)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            self.server.requests.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _LeakServer(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


def grade_corpus(root: Path, data: Path, weights: Path, ctx: Context, *, workers: int = 2) -> dict:
    """A course in ``root``, every case submitted and graded in one batch; the outcome rows."""
    from tlcourse.grading.grade.course import init_course, repo_root
    from tlcourse.grading.grade.pool import grade_class

    course = init_course(root / "course", data=data, weights=weights, force=True)
    solution = repo_root() / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    write_submissions(solution, root / "submissions", ctx)
    start = time.perf_counter()
    result = grade_class(
        course,
        ASSIGNMENT,
        root / "submissions",
        workers=workers,
        cell_timeout=CELL_TIMEOUT,
        progress=False,
        log=lambda _: None,
    )
    seconds = time.perf_counter() - start
    students = json.loads(result.report.read_text())["students"]
    rows = [
        {
            "case": case.name,
            "attack": case.attack,
            "defence": case.defence,
            "expected": case.score,
            **students[case.name],
        }
        for case in CASES
    ]
    return {
        "course": course,
        "submissions": root / "submissions",
        "sentinel": ctx.sentinel,
        "data": data,
        "weights": weights,
        "batch_seconds": seconds,
        "workers": workers,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Grade the corpus in a temporary folder and record its outcome table as JSON."""
    import argparse
    import tempfile

    from tlcourse.data import locate_cifar10
    from tlcourse.grading.sandbox import isolation
    from tlcourse.provenance import collect
    from tlcourse.weights import locate_weights

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    data, weights = locate_cifar10(None), locate_weights(None)
    with tempfile.TemporaryDirectory() as folder, leak_server() as server:
        outcome = grade_corpus(Path(folder), data, weights, server.context(Path(folder)))
        requests = list(server.requests)
    record = {
        "assignment": ASSIGNMENT,
        "cell_timeout_s": CELL_TIMEOUT,
        "workers": outcome["workers"],
        "batch_seconds": round(outcome["batch_seconds"], 1),
        "requests_reaching_the_network": requests,
        "isolation": isolation(),
        "cases": outcome["rows"],
        "provenance": {
            **collect(seed=0, data_path=data, weights_path=weights),
            "command": f"cd autograder/tests && python -m corpus.hostile {args.output}",
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # run the module proper, whose CASES hold every case below
    from corpus.hostile import main as _main

    raise SystemExit(_main())

# Attacks on the verdict and on the sandbox live in their own modules, built on the helpers above.
from corpus.escapes import ESCAPES  # noqa: E402
from corpus.forgeries import FORGERIES  # noqa: E402

CASES = (*CASES, *FORGERIES, *ESCAPES)
