"""Calibrate assignment 3's lines: grade the reference E3 and a head-only E1, over seeds.

Each run grades a notebook exactly as a student's submission is graded
(``tlcourse.grading.grade.pool.run_one``: nbgrader autograde in the sandbox under the grading
budget, then the grader's own evaluation of the handed-in weights), with ``$TLCOURSE_SEED``
choosing the data subset, the split and the training seed. Two variants: ``reference-E3``
(``solutions/03-finetuning``) and ``head-only-E1`` (the same notebook with ``experiment='E1'``,
the corpus case ``head-only-e1``). ``--repeats`` grades seed 0 of each variant again, for the
run-to-run spread. One JSON record a run goes to ``--out`` with provenance; the summary (per
variant: mean, spread, extremes of held-out accuracy and of the least-moved backbone block) is
printed and written as ``03-finetuning-calibration.json``.

    python autograder/calibrate.py --course /tmp/course --seeds 0-9 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

from tlcourse import provenance
from tlcourse.files import write_json_atomic
from tlcourse.grading.grade import accuracy
from tlcourse.grading.grade.course import check_course, repo_root
from tlcourse.grading.grade.intake import stage
from tlcourse.grading.grade.pool import run_one
from tlcourse.grading.student.budget import SEED_ENV, current_budget

ASSIGNMENT = "03-finetuning"
VARIANTS = ("reference-E3", "head-only-E1")


def _notebook(variant: str, dest: Path) -> None:
    solution = repo_root() / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    if variant == "reference-E3":
        shutil.copy(solution, dest / solution.name)
        return
    sys.path.insert(0, str(repo_root() / "autograder" / "tests"))
    from corpus.mistakes import MISTAKES, apply

    case = next(m for m in MISTAKES if m.name == "head-only-e1")
    apply(case, solution, dest / solution.name)


def _seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def grade_run(course: Path, variant: str, seed: int, repeat: int, out: Path) -> dict:
    """Grade one calibration notebook; its record, written to ``out``."""
    student = f"calibration-{variant}-seed{seed}-run{repeat}"
    staging = course / "grader" / "calibration" / student / ASSIGNMENT
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _notebook(variant, staging)
    stage(course, ASSIGNMENT, student, staging)
    os.environ[SEED_ENV] = str(seed)
    load_before = os.getloadavg()
    result = run_one(course, ASSIGNMENT, student, None)
    evidence = result.get("handin_evidence") or {}
    record = {
        "kind": "tlcourse-grading-calibration",
        "assignment": ASSIGNMENT,
        "variant": variant,
        "repeat": repeat,
        "budget": current_budget().name,
        "held_out_accuracy": result["held_out_accuracy"],
        "least_moved_block": min(evidence.get("block_change", {}).values(), default=None),
        "block_change": evidence.get("block_change"),
        "score": result["score"],
        "max_score": result["max_score"],
        "seconds_per_notebook": result["seconds"],
        "provenance": {
            "command": provenance.command_line(),
            "git_commit": provenance.git_commit(),
            "versions": provenance.package_versions(),
            "seed": seed,
            "machine": provenance.machine(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "date": provenance.now_utc(),
        },
    }
    write_json_atomic(
        out / f"{ASSIGNMENT}-calibration-{variant}-seed{seed}-run{repeat}.json", record
    )
    print(
        f"{variant} seed {seed} run {repeat}: held-out {record['held_out_accuracy']:.4f}, "
        "least-moved block "
        f"{record['least_moved_block']:.2e}, score {record['score']:g}, "
        f"{record['seconds_per_notebook']:.0f} s",
        flush=True,
    )
    return record


def recorded(folder: Path) -> list[dict]:
    """The calibration runs recorded in ``folder``."""
    import json

    found = (json.loads(p.read_text()) for p in sorted(folder.glob(f"{ASSIGNMENT}-calibration-*")))
    return [r for r in found if r.get("kind") == "tlcourse-grading-calibration"]


def summarise(records: list[dict]) -> dict:
    """Per variant: held-out accuracy and least-moved block (mean, std, extremes); the lines."""
    variants = {}
    for variant in VARIANTS:
        runs = [r for r in records if r["variant"] == variant]
        if not runs:
            continue
        first = [r for r in runs if r["repeat"] == 0]  # one run a seed: the seeds' spread
        held = [r["held_out_accuracy"] for r in first]
        moved = [r["least_moved_block"] for r in runs]
        by_seed: dict[int, list[float]] = {}
        for r in runs:
            by_seed.setdefault(r["provenance"]["seed"], []).append(r["held_out_accuracy"])
        variants[variant] = {
            "runs": len(runs),
            "repeats": len(runs) - len(first),
            "seeds": sorted(by_seed),
            "held_out_accuracy_mean": statistics.mean(held),
            "held_out_accuracy_std": statistics.stdev(held) if len(held) > 1 else 0.0,
            "held_out_accuracy_min": min(held),
            "held_out_accuracy_max": max(held),
            "least_moved_block_min": min(moved),
            "least_moved_block_max": max(moved),
            "repeat_spread": max(max(v) - min(v) for v in by_seed.values()),
        }
    return {
        "kind": "tlcourse-grading-calibration-summary",
        "assignment": ASSIGNMENT,
        "variants": variants,
        "lines": {
            "zero_at": accuracy.ZERO_AT,
            "full_at": accuracy.FULL_AT,
            "moved_at": accuracy.MOVED_AT,
        },
        "date": provenance.now_utc(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, help="from tlcourse course init")
    parser.add_argument("--seeds", default="0-9", help="'0-9' or '0,1,2'")
    # Runs of seed 0 again: graded twice, a submission must get the same grade.
    parser.add_argument("--repeats", type=int, default=2, help="extra runs of the first seed")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("results/grading"))
    parser.add_argument(
        "--summarise", action="store_true", help="only summarise the records already in --out"
    )
    args = parser.parse_args()
    if args.summarise:
        summary = summarise(recorded(args.out))
        write_json_atomic(args.out / f"{ASSIGNMENT}-calibration.json", summary)
        print(summary)
        return
    course = check_course(args.course)
    seeds = _seeds(args.seeds)
    records = []
    for variant in args.variants.split(","):
        runs = [(seed, 0) for seed in seeds] + [(seeds[0], k) for k in range(1, args.repeats + 1)]
        for seed, repeat in runs:
            records.append(grade_run(course, variant, seed, repeat, args.out))
    summary = summarise(records)
    write_json_atomic(args.out / f"{ASSIGNMENT}-calibration.json", summary)
    print(summary)


if __name__ == "__main__":
    main()
