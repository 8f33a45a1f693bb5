"""The book's tables are computed from run records: the ladder, classes, collapses, grading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlcourse.analysis import (
    calibration_table,
    collapse_table,
    confused_pairs,
    grading_speed_table,
    group,
    ladder,
    ladder_table,
    load_calibration,
    per_class_table,
    pooled_confusion,
    select,
    size_series,
)
from tlcourse.architecture import alexnet_parameter_count, parameter_count
from tlcourse.report import RECORD_KIND


def record(experiment, protocol, seed, val, test=None, *, status="ok", size=32, dead=None):
    data = {
        "kind": RECORD_KIND,
        "budget": "paper",
        "experiment": experiment,
        "protocol": protocol,
        "status": status,
        "config": {"seed": seed, "image_size": size, "learning_rate": 1e-3},
        "final": {"val_accuracy": val, "test_accuracy": test, "epochs_run": 3},
        "history": {"loss": [2.4, 2.303, 2.302585]},
    }
    if dead is not None:
        data["diagnostics"] = {"fire9_dead_channels": dead}
    return data


def test_groups_follow_the_ladder_then_the_experiments_then_the_seeds():
    records = [
        record("E1", "imagenet-norm", 0, 0.4),
        record("E3", "study-lr1e-4", 1, 0.7),
        record("E1", "study-lr1e-4", 0, 0.38),
        record("E3", "study-lr1e-4", 0, 0.72),
        record("E2", "unknown-recipe", 0, 0.5),
    ]
    keys = list(group(records))
    assert keys == [
        ("study-lr1e-4", "E1"),
        ("study-lr1e-4", "E3"),
        ("imagenet-norm", "E1"),
        ("unknown-recipe", "E2"),
    ]
    assert [r["config"]["seed"] for r in group(records)[("study-lr1e-4", "E3")]] == [0, 1]
    assert select(records, protocols=["imagenet-norm"], experiments=["E1"]) == [records[0]]


def test_each_step_is_measured_against_the_nearest_ancestor_that_ran_the_experiment():
    records = [
        record("E1", "study", 0, 0.36),
        record("E1", "study", 1, 0.38),
        # imagenet-norm (E1) not run: 64px compares against study-lr1e-4, then study.
        record("E1", "imagenet-norm-64px", 0, 0.57, 0.56),
        record("E3", "study", 0, 0.1, status="collapsed"),
        record("E3", "study-lr1e-4", 0, 0.73, 0.72),
    ]
    steps = {(s.protocol, s.experiment): s for s in ladder(records)}
    step = steps[("imagenet-norm-64px", "E1")]
    assert step.baseline == "study"
    assert step.effect == pytest.approx(0.57 - 0.37)
    assert step.test == pytest.approx(0.56)
    assert steps[("study", "E3")].val is None and steps[("study", "E3")].collapsed == 1
    assert steps[("study-lr1e-4", "E3")].parent_collapsed
    table = ladder_table(list(steps.values()))
    assert "| `imagenet-norm-64px` | E1 | 1 | 57.00 | 56.00 | +20.00 pp vs `study` |" in table
    assert "| `study` | E3 | 1 (1 collapsed) | - | - | collapsed |" in table
    assert "trains (collapsed under `study`)" in table


def test_size_series_keeps_the_family_that_differs_only_in_size():
    records = [
        record("E1", "study-lr1e-4", 0, 0.38),
        record("E1", "imagenet-norm", 0, 0.41, 0.40),
        record("E1", "imagenet-norm-128px", 0, 0.70, 0.69, size=128),
        record("E1", "imagenet-norm-64px", 0, 0.56, 0.57, size=64),
        record("E1", "imagenet-norm-64px", 1, 0.58, 0.59, size=64),
        record("E1", "frozen-no-dropout", 0, 0.75, 0.76, size=224),  # also changes dropout
    ]
    series = size_series(records)
    assert list(series) == [32, 64, 128]
    assert series[64]["val"] == pytest.approx(0.57)
    assert series[128]["protocol"] == "imagenet-norm-128px"


def test_per_class_table_and_pairs_come_from_the_summed_matrices():
    names = ["cat", "dog", "ship"]
    a = {"class_names": names, "confusion_matrix": [[6, 4, 0], [2, 8, 0], [0, 1, 9]]}
    b = {"class_names": names, "confusion_matrix": [[4, 6, 0], [0, 10, 0], [0, 0, 10]]}
    runs = [record("E3", "p", 0, 0.8) | {"test": a}, record("E3", "p", 1, 0.8) | {"test": b}]
    runs.append(record("E3", "p", 2, 0.8) | {"test": None})
    matrix, names = pooled_confusion(runs)
    assert matrix.tolist() == [[10, 10, 0], [2, 18, 0], [0, 1, 19]]
    rows = per_class_table(matrix, names).splitlines()[2:]
    # Worst recall first: cat 50%, precision 10/12; most often taken for dog, 50% of cats.
    assert rows[0] == "| cat | 50.0 | 83.3 | dog | 50.0 |"
    assert [r.split("|")[1].strip() for r in rows] == ["cat", "dog", "ship"]
    assert confused_pairs(matrix, names, top=1) == [{"pair": ("cat", "dog"), "errors": 12}]
    with pytest.raises(ValueError, match="test evaluation"):
        pooled_confusion(runs[2:])


def test_collapse_table_lists_only_diagnosed_runs():
    records = [
        record("E3", "study", 0, 0.1, status="collapsed", dead=1.0),
        record("E1", "study", 0, 0.38),  # an older record, no diagnostics
    ]
    table = collapse_table(records)
    assert "| `paper/E3-study-seed0` | 0.001 | collapsed | 3 | 2.303 | 100.0 |" in table
    assert "E1-study" not in table


def test_calibration_is_read_from_its_records(tmp_path):
    for variant, seed, repeat, accuracy in (
        ("reference-E3", 1, 0, 0.40),
        ("reference-E3", 0, 1, 0.44),
        ("reference-E3", 0, 0, 0.44),
        ("head-only-E1", 0, 0, 0.38),
    ):
        (tmp_path / f"{variant}-{seed}-{repeat}.json").write_text(
            json.dumps(
                {
                    "kind": "tlcourse-grading-calibration",
                    "variant": variant,
                    "repeat": repeat,
                    "held_out_accuracy": accuracy,
                    "least_moved_block": 0.0 if variant == "head-only-E1" else 0.0062,
                    "score": 12.0,
                    "max_score": 12.0,
                    "seconds_per_notebook": 50.4,
                    "provenance": {"seed": seed},
                }
            )
        )
    (tmp_path / "summary.json").write_text(
        json.dumps({"kind": "tlcourse-grading-calibration-summary", "variants": {}})
    )
    (tmp_path / "other.json").write_text(json.dumps({"kind": "tlcourse-run"}))
    runs, summary = load_calibration(tmp_path)
    assert summary == {"kind": "tlcourse-grading-calibration-summary", "variants": {}}
    lines = calibration_table(runs).splitlines()
    assert lines[2:] == [
        "| head-only-E1 | 0 | 1 | 38.0 | 0.0e+00 | 12 of 12 | 50 |",
        "| reference-E3 | 0 | 1 | 44.0 | 6.2e-03 | 12 of 12 | 50 |",
        "| reference-E3 | 0 | 2 | 44.0 | 6.2e-03 | 12 of 12 | 50 |",
        "| reference-E3 | 1 | 1 | 40.0 | 6.2e-03 | 12 of 12 | 50 |",
    ]


def test_parameter_counts_match_torchvision():
    # torchvision's documented counts: squeezenet1_1 1,235,496; alexnet 61,100,840.
    assert parameter_count() == 1_235_496
    assert alexnet_parameter_count() == 61_100_840
    # With a 10-class classifier: what the transfer model trains under E3.
    assert parameter_count(10) == parameter_count() - 1000 * 513 + 10 * 513


def test_the_real_records_make_every_table():
    from pathlib import Path

    from tlcourse.report import load_records

    records = load_records(Path(__file__).resolve().parents[1] / "results")
    assert records, "results/ holds run records"
    steps = ladder(records)
    assert len(steps) == len(group(records))
    assert ladder_table(steps).count("\n") == len(steps) + 2
    assert np.isfinite([s.val for s in steps if s.val is not None]).all()


def _speed(seconds_a3: float, one: float, two: float) -> dict:
    runs = [
        {"workers": w, "submissions": 20, "seconds": s, "submissions_per_hour": 20 / s * 3600}
        for w, s in ((1, one), (2, two))
    ]
    return {
        "per_notebook": {
            "01-preprocessing": {"seconds_per_notebook": 11.0},
            "03-finetuning": {"seconds_per_notebook": seconds_a3},
        },
        "batch": {"assignment": "01-preprocessing", "runs": runs, "ratio": one / two},
    }


def test_grading_speed_table_says_which_targets_are_met():
    met = grading_speed_table(_speed(37.2, 256, 125))
    assert "| 03-finetuning | 37.2 | <= 60 s: met |" in met
    assert "| 2 | 125 | 576 |" in met
    assert "**2.05x** (target >= 1.6x: met)" in met
    missed = grading_speed_table(_speed(61.0, 256, 240))
    assert "<= 60 s: not met" in missed and "**1.07x** (target >= 1.6x: not met)" in missed
