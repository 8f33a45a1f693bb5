"""Record the realistic-submissions corpus: every case graded as a class, expected against got.

``python -m corpus.record RESULTS_JSON`` (from ``autograder/tests``, with ``$TLCOURSE_DATA`` and
``$TLCOURSE_WEIGHTS`` set as the README says) makes a course in a temporary folder, submits the
reference solution and every case of :data:`corpus.mistakes.MISTAKES`, grades each assignment
in one batch (``grade_class``, in the sandbox) and writes, a case a row, the points expected and
got per graded cell, the known mistakes expected and those the feedback named, with provenance.
The instructor page of the book shows it beside the hostile corpus.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import tempfile
import time
from pathlib import Path

from corpus.mistakes import MISTAKES, apply

ASSIGNMENTS = ("01-preprocessing", "02-freezing", "03-finetuning")


def named_mistakes(feedback: str) -> list[str]:
    """The known mistakes a feedback page names, in the rubric's order."""
    from tlcourse.grading.student import checks

    known = (*checks.KNOWN_MISTAKES, *checks.FINETUNING_MISTAKES)
    return [name for name in known if f"Known mistake: {name}." in feedback]


def grade_corpus(root: Path, *, workers: int = 2) -> list[dict]:
    """Every case and the solution, graded in a new course under ``root``; a row a case."""
    from nbgrader.api import Gradebook

    from tlcourse.grading.grade.course import init_course, repo_root
    from tlcourse.grading.grade.pool import grade_class

    course = init_course(root / "course")
    rows = []
    for assignment in ASSIGNMENTS:
        solution = repo_root() / "solutions" / assignment / f"{assignment}.ipynb"
        submissions = root / "submissions" / assignment
        (submissions / "reference" / assignment).mkdir(parents=True)
        shutil.copy(solution, submissions / "reference" / assignment)
        cases = [m for m in MISTAKES if m.assignment == assignment]
        for case in cases:
            apply(case, solution, submissions / case.name / assignment / solution.name)
        start = time.perf_counter()
        grade_class(course, assignment, submissions, workers=workers, progress=False, log=print)
        seconds = time.perf_counter() - start
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "tlcourse") as gradebook:
            for case in cases:
                notebook = gradebook.find_submission(assignment, case.name).notebooks[0]
                got = {g.name: g.score for g in notebook.grades if g.cell.cell_type == "code"}
                full = {g.name: g.max_score for g in notebook.grades if g.cell.cell_type == "code"}
                expected = {cell: case.lost.get(cell, points) for cell, points in full.items()}
                page = course / "feedback" / case.name / assignment / solution.name
                named = named_mistakes(html.unescape(page.with_suffix(".html").read_text()))
                rows.append(
                    {
                        "case": case.name,
                        "assignment": assignment,
                        "valid": case.valid,
                        "expected": expected,
                        "got": got,
                        "expected_total": sum(expected.values()),
                        "got_total": sum(got.values()),
                        "max_total": sum(full.values()),
                        "expected_diagnoses": list(case.diagnoses),
                        "named_diagnoses": named,
                        "as_expected": got == expected and set(named) == set(case.diagnoses),
                        "batch_seconds": round(seconds, 1),
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Grade the corpus in a temporary folder and record its outcome table as JSON."""
    from tlcourse.data import locate_cifar10
    from tlcourse.provenance import collect
    from tlcourse.weights import locate_weights

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    data, weights = locate_cifar10(None), locate_weights(None)
    with tempfile.TemporaryDirectory() as folder:
        rows = grade_corpus(Path(folder))
    record = {
        "kind": "tlcourse-grading-corpus",
        "cases": rows,
        "wrong": sum(not row["valid"] for row in rows),
        "valid": sum(row["valid"] for row in rows),
        "as_expected": sum(row["as_expected"] for row in rows),
        "provenance": {
            **collect(seed=0, data_path=data, weights_path=weights),
            "command": f"cd autograder/tests && python -m corpus.record {args.output}",
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['as_expected']} of {len(rows)} cases as expected")
    return 0 if record["as_expected"] == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
