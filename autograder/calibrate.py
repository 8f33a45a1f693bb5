"""Calibrate assignment 3's accuracy thresholds: grade the reference solution over seeds.

Each seed grades ``solutions/03-finetuning`` exactly as a student's submission is graded
(``tlcourse.grading.grade.pool.run_one``: nbgrader autograde under the grading budget, then the
grader's held-out evaluation), with ``$TLCOURSE_SEED`` choosing the data subset, the split
and the training seed. One JSON record a seed goes to ``--out`` with provenance; the summary
(mean and spread) is printed and written as ``calibration.json``.

    python autograder/calibrate.py --course /tmp/course --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from tlcourse import provenance
from tlcourse.grading.grade.course import check_course, repo_root
from tlcourse.grading.grade.intake import stage
from tlcourse.grading.grade.pool import run_one
from tlcourse.grading.student.budget import SEED_ENV, current_budget
from tlcourse.train import write_json_atomic

ASSIGNMENT = "03-finetuning"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", type=Path, required=True, help="from tlcourse course init")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", type=Path, default=Path("results/grading"))
    args = parser.parse_args()
    course = check_course(args.course)
    solution = repo_root() / "solutions" / ASSIGNMENT
    records = []
    for seed in (int(s) for s in args.seeds.split(",")):
        student = f"calibration-seed{seed}"
        staging = course / "grader" / "calibration" / student / ASSIGNMENT
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy(solution / f"{ASSIGNMENT}.ipynb", staging)
        stage(course, ASSIGNMENT, student, staging)
        os.environ[SEED_ENV] = str(seed)
        load_before = os.getloadavg()
        result = run_one(course, ASSIGNMENT, student, None)
        record = {
            "kind": "tlcourse-grading-calibration",
            "assignment": ASSIGNMENT,
            "budget": current_budget().name,
            "held_out_accuracy": result["held_out_accuracy"],
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
        write_json_atomic(args.out / f"{ASSIGNMENT}-calibration-seed{seed}.json", record)
        records.append(record)
        print(
            f"seed {seed}: held-out accuracy {record['held_out_accuracy']:.4f}, "
            f"{record['seconds_per_notebook']:.0f} s"
        )
    accuracies = [r["held_out_accuracy"] for r in records]
    summary = {
        "kind": "tlcourse-grading-calibration-summary",
        "assignment": ASSIGNMENT,
        "seeds": [r["provenance"]["seed"] for r in records],
        "held_out_accuracy_mean": statistics.mean(accuracies),
        "held_out_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "full_marks_from_mean_minus_2_std": statistics.mean(accuracies)
        - 2 * (statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(args.out / f"{ASSIGNMENT}-calibration.json", summary)
    print(summary)


if __name__ == "__main__":
    main()
