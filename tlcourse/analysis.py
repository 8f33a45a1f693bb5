"""What the run records say, as tables for the book: the recipe ladder, classes, collapses.

Every function takes run records (``tlcourse.report.load_records``) and computes; nothing here
knows which records exist. Groups follow the recipe ladder (``tlcourse.protocols.PROTOCOLS``),
then the experiments in order. Accuracies are means over the runs that trained (``status``
``"ok"``); collapsed runs are counted, never averaged. Tables are Markdown strings.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcourse.config import EXPERIMENTS
from tlcourse.protocols import PROTOCOLS, protocol_rank

# --------------------------------------------------------------------------------- selecting


def select(
    records: Iterable[dict],
    *,
    budget: str | None = None,
    protocols: Sequence[str] | None = None,
    experiments: Sequence[str] | None = None,
) -> list[dict]:
    """The records of ``budget``, ``protocols`` and ``experiments`` (``None``: any)."""
    return [
        r
        for r in records
        if (budget is None or r["budget"] == budget)
        and (protocols is None or r["protocol"] in protocols)
        and (experiments is None or r["experiment"] in experiments)
    ]


def run_name(record: dict) -> str:
    """``<budget>/<experiment>-<protocol>-seed<seed>``: where the record lives in ``results/``."""
    return (
        f"{record['budget']}/{record['experiment']}-{record['protocol']}"
        f"-seed{record['config']['seed']}"
    )


def group(records: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    """Records by ``(protocol, experiment)``, in ladder order, each group sorted by seed."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["protocol"], record["experiment"]), []).append(record)
    order = list(EXPERIMENTS)

    def rank(key: tuple[str, str]) -> tuple:
        protocol, experiment = key
        index = order.index(experiment) if experiment in order else len(order)
        return (*protocol_rank(protocol), index, experiment)

    return {
        key: sorted(groups[key], key=lambda r: r["config"]["seed"])
        for key in sorted(groups, key=rank)
    }


def trained(runs: Iterable[dict]) -> list[dict]:
    """The runs that trained (not collapsed)."""
    return [r for r in runs if r["status"] == "ok"]


def mean_accuracy(runs: Iterable[dict], split: str = "val") -> float | None:
    """Mean final ``split`` accuracy (``"val"`` or ``"test"``) over trained runs, 0..1."""
    values = [
        r["final"][f"{split}_accuracy"]
        for r in trained(runs)
        if r["final"].get(f"{split}_accuracy") is not None
    ]
    return statistics.mean(values) if values else None


def percent(value: float | None, digits: int = 2) -> str:
    """``0.7429`` -> ``"74.29"``; ``None`` -> ``"-"``."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def best_run(records: Iterable[dict], split: str = "test") -> dict | None:
    """The trained run with the highest final ``split`` accuracy, or ``None``."""
    runs = [r for r in trained(records) if r["final"].get(f"{split}_accuracy") is not None]
    return max(runs, key=lambda r: r["final"][f"{split}_accuracy"], default=None)


# --------------------------------------------------------------------------------- the ladder


@dataclass(frozen=True)
class LadderStep:
    """One protocol on one experiment: its runs and its effect against the nearest ancestor."""

    protocol: str
    experiment: str
    description: str
    runs: int
    collapsed: int
    val: float | None
    test: float | None
    baseline: str | None  # the nearest ancestor protocol with trained runs of this experiment
    effect: float | None  # val - baseline's val, in accuracy 0..1
    parent_collapsed: bool = False  # the parent ran this experiment and every run collapsed


def ladder(records: Iterable[dict]) -> list[LadderStep]:
    """One step a (protocol, experiment) group, in ladder order, with its measured effect.

    The effect is the change of mean validation accuracy against the nearest ancestor
    protocol (``Protocol.parent``, then its parent ...) that has trained runs of the same
    experiment: each step changes one thing, so the difference is that change's effect.
    """
    groups = group(records)
    means = {key: mean_accuracy(runs) for key, runs in groups.items()}
    steps = []
    for (protocol, experiment), runs in groups.items():
        known = PROTOCOLS.get(protocol)
        baseline = known.parent if known else None
        while baseline is not None and means.get((baseline, experiment)) is None:
            baseline = PROTOCOLS[baseline].parent
        parent = (known.parent, experiment) if known else None
        parent_collapsed = parent in groups and means[parent] is None
        val = means[(protocol, experiment)]
        base_val = means.get((baseline, experiment)) if baseline else None
        steps.append(
            LadderStep(
                protocol=protocol,
                experiment=experiment,
                description=known.description if known else "(not a protocol of this version)",
                runs=len(runs),
                collapsed=len(runs) - len(trained(runs)),
                val=val,
                test=mean_accuracy(runs, "test"),
                baseline=baseline,
                effect=None if val is None or base_val is None else val - base_val,
                parent_collapsed=parent_collapsed,
            )
        )
    return steps


def ladder_table(steps: Sequence[LadderStep]) -> str:
    """The ladder as a Markdown table: each step's accuracy and its effect on validation."""
    lines = [
        "| Protocol | Experiment | Runs | Val % | Test % | Effect on val |",
        "|---|---|---|---|---|---|",
    ]
    for s in steps:
        if s.val is None:
            effect = "collapsed"
        elif s.parent_collapsed:
            effect = f"trains (collapsed under `{PROTOCOLS[s.protocol].parent}`)"
        elif s.effect is not None:
            effect = f"{100 * s.effect:+.2f} pp vs `{s.baseline}`"
        else:
            effect = "-"
        runs = f"{s.runs}" + (f" ({s.collapsed} collapsed)" if s.collapsed else "")
        lines.append(
            f"| `{s.protocol}` | {s.experiment} | {runs} "
            f"| {percent(s.val)} | {percent(s.test)} | {effect} |"
        )
    return "\n".join(lines) + "\n"


def size_series(records: Iterable[dict], experiment: str = "E1") -> dict[int, dict]:
    """Mean accuracies by input size, from the protocols that differ only in image size.

    Protocols whose settings for ``experiment`` are equal once ``image_size`` is left out
    form a family (``imagenet-norm``, ``imagenet-norm-64px`` ...); the family with trained
    runs at the most sizes is returned as ``{image_size: {"val", "test", "protocol"}}``,
    sizes ascending.
    """
    families: dict[str, dict[int, dict]] = {}
    for (protocol, _), runs in group(select(records, experiments=[experiment])).items():
        if protocol not in PROTOCOLS or not trained(runs):
            continue
        settings = dict(PROTOCOLS[protocol].settings(experiment))
        settings.pop("image_size", None)
        family = families.setdefault(json.dumps(settings, sort_keys=True), {})
        family.setdefault(
            runs[0]["config"]["image_size"],
            {"val": mean_accuracy(runs), "test": mean_accuracy(runs, "test"), "protocol": protocol},
        )
    largest = max(families.values(), key=len, default={})
    return dict(sorted(largest.items()))


# --------------------------------------------------------------------------------- classes


def pooled_confusion(records: Iterable[dict]) -> tuple[np.ndarray, tuple[str, ...]]:
    """The test confusion matrices of ``records`` summed (runs without a test are skipped)."""
    tested = [r["test"] for r in records if r.get("test")]
    if not tested:
        raise ValueError("None of the records has a test evaluation (`test` is empty in each).")
    names = tuple(tested[0]["class_names"])
    matrix = sum(np.asarray(t["confusion_matrix"], dtype=np.int64) for t in tested)
    return matrix, names


def per_class_table(matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """Recall, precision and the most frequent mistake of each class, as Markdown.

    Rows follow recall, worst class first. ``matrix``: counts, rows = true class.
    """
    counts = np.asarray(matrix, dtype=np.int64)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    diagonal = np.diag(counts)
    recall = np.divide(diagonal, support, out=np.zeros(len(support)), where=support > 0)
    precision = np.divide(diagonal, predicted, out=np.zeros(len(support)), where=predicted > 0)
    lines = [
        "| Class | Recall % | Precision % | Most often taken for | Share of the class % |",
        "|---|---|---|---|---|",
    ]
    for i in np.argsort(recall, kind="stable"):
        errors = counts[i].copy()
        errors[i] = -1
        j = int(np.argmax(errors))
        share = counts[i, j] / support[i] if support[i] else 0.0
        lines.append(
            f"| {class_names[i]} | {percent(recall[i], 1)} | {percent(precision[i], 1)} "
            f"| {class_names[j]} | {percent(share, 1)} |"
        )
    return "\n".join(lines) + "\n"


def confused_pairs(matrix: np.ndarray, class_names: Sequence[str], top: int = 3) -> list[dict]:
    """The ``top`` pairs of classes most often taken for each other (both directions summed)."""
    counts = np.asarray(matrix, dtype=np.int64)
    both = counts + counts.T
    pairs = [
        {"pair": (class_names[i], class_names[j]), "errors": int(both[i, j])}
        for i in range(len(class_names))
        for j in range(i + 1, len(class_names))
    ]
    return sorted(pairs, key=lambda p: -p["errors"])[:top]


# --------------------------------------------------------------------------------- collapses


def collapse_table(records: Iterable[dict]) -> str:
    """Each record with a fire9 diagnosis: status, epochs, last losses, dead fire9 channels."""
    lines = [
        "| Run | Learning rate | Status | Epochs run | Last training loss "
        "| fire9 channels dead % |",
        "|---|---|---|---|---|---|",
    ]
    for runs in group(records).values():
        for r in runs:
            dead = r.get("diagnostics", {}).get("fire9_dead_channels")
            if dead is None:
                continue
            lines.append(
                f"| `{run_name(r)}` | {r['config']['learning_rate']:g} | {r['status']} "
                f"| {r['final']['epochs_run']} | {r['history']['loss'][-1]:.3f} "
                f"| {percent(dead, 1)} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- grading


def load_calibration(folder: str | os.PathLike) -> tuple[list[dict], dict | None]:
    """The grading calibration under ``folder``: its runs (by variant, seed and repeat) and the
    summary (or None)."""
    runs, summary = [], None
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("kind") == "tlcourse-grading-calibration":
            runs.append(data)
        elif data.get("kind") == "tlcourse-grading-calibration-summary":
            summary = data
    order = lambda d: (d.get("variant", ""), d["provenance"]["seed"], d.get("repeat", 0))  # noqa: E731
    return sorted(runs, key=order), summary


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table: one header row, a rule, then ``rows`` (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def calibration_table(runs: Sequence[dict]) -> str:
    """One row a calibration run: variant, seed, held-out accuracy, least-moved block, score."""
    header = ("Variant", "Seed", "Run", "Held-out accuracy %", "Least-moved backbone block")
    rows = []
    for d in runs:
        moved = d.get("least_moved_block")
        rows.append(
            (
                d.get("variant", "-"),
                str(d["provenance"]["seed"]),
                str(d.get("repeat", 0) + 1),
                percent(d["held_out_accuracy"], 1),
                "-" if moved is None else f"{moved:.1e}",
                f"{d['score']:g} of {d['max_score']:g}",
                f"{d['seconds_per_notebook']:.0f}",
            )
        )
    return markdown_table((*header, "Score", "Seconds"), rows)


def calibration_summary_table(summary: dict) -> str:
    """Per variant: runs, held-out accuracy (mean, std, range), least-moved block, rerun spread."""
    header = (
        "Variant",
        "Runs",
        "Held-out accuracy % (mean +/- std)",
        "Range %",
        "Least-moved block (range)",
        "Same seed, graded again: spread",
    )
    rows = [
        (
            name,
            str(v["runs"]),
            f"{percent(v['held_out_accuracy_mean'], 1)} +/- {100 * v['held_out_accuracy_std']:.1f}",
            f"{percent(v['held_out_accuracy_min'], 1)} to {percent(v['held_out_accuracy_max'], 1)}",
            f"{v['least_moved_block_min']:.1e} to {v['least_moved_block_max']:.1e}",
            f"{100 * v['repeat_spread']:.1f} points",
        )
        for name, v in summary["variants"].items()
    ]
    return markdown_table(header, rows)


def corpus_table(record: dict) -> str:
    """One row a realistic-corpus case: expected and got points, mistakes named."""
    header = ("Assignment", "Case", "Expected", "Got", "Mistakes named in the feedback")
    rows = [
        (
            row["assignment"],
            row["case"],
            f"{row['expected_total']:g} of {row['max_total']:g}",
            f"{row['got_total']:g}",
            "; ".join(row["named_diagnoses"]) or ("none (valid)" if row["valid"] else "none"),
            "yes" if row["as_expected"] else "**no**",
        )
        for row in record["cases"]
    ]
    return markdown_table((*header, "As expected"), rows)


def rubric_table(lines: Sequence) -> str:
    """An assignment's rubric (:func:`tlcourse.grading.autotests.rubric`) as a Markdown table."""
    rows = [(f"`{line.cell}`", f"{line.points:g}", line.mistake, line.cost) for line in lines]
    return markdown_table(("Graded cell", "Points", "Mistake", "Points lost"), rows)


def grader_action(row: dict) -> str:
    """What the grader did with one corpus submission, from the notes it recorded."""
    if row.get("not_graded"):
        return f"not graded: {row['not_graded']}"
    notes = [note for note in row.get("notes", []) if not note.startswith("The grading metadata")]
    notes = notes or row.get("notes", [])
    if row.get("identical_to"):
        return "graded; flagged identical to " + ", ".join(row["identical_to"])
    if not notes:
        return "graded as written; " + (row.get("defence") or "the attack had no effect")
    said = f"{notes[0]} ({row['defence']})" if row.get("defence") else notes[0]
    return said.replace("|", "\\|")


def hostile_table(record: dict) -> str:
    """One row a hostile-corpus case: the attack, what the grader did, grade, seconds."""
    lines = [
        "| Case | Attack | What the grader did | Grade | Seconds |",
        "|---|---|---|---|---|",
    ]
    for row in record["cases"]:
        grade = "-" if row["score"] is None else f"{row['score']:g} of {row['max_score']:g}"
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(
            f"| {row['case']} | {row['attack']} | {grader_action(row)} | {grade} | {seconds} |"
        )
    return "\n".join(lines) + "\n"


#: Targets of the grading benchmark (``bench/bench_grading.py``).
GRADING_SECONDS_TARGET = 60
WORKER_RATIO_TARGET = 1.6


def grading_speed_table(record: dict) -> str:
    """The grading benchmark's record as tables: seconds a notebook, a batch's throughput."""
    lines = [
        "| Assignment | Seconds per graded notebook | Target |",
        "|---|---|---|",
    ]
    for name, row in record["per_notebook"].items():
        seconds = row["seconds_per_notebook"]
        target = ""
        if name == "03-finetuning":
            met = "met" if seconds <= GRADING_SECONDS_TARGET else "not met"
            target = f"<= {GRADING_SECONDS_TARGET} s: {met}"
        lines.append(f"| {name} | {seconds:.1f} | {target} |")
    batch = record["batch"]
    ratio = batch["ratio"]
    lines += [
        "",
        f"A batch of {batch['runs'][0]['submissions']} submissions of {batch['assignment']}:",
        "",
        "| Workers | Seconds | Submissions per hour |",
        "|---|---|---|",
        *(
            f"| {run['workers']} | {run['seconds']:.0f} | {run['submissions_per_hour']:.0f} |"
            for run in batch["runs"]
        ),
        "",
        f"2 workers / 1 worker: **{ratio:.2f}x** (target >= {WORKER_RATIO_TARGET}x: "
        f"{'met' if ratio >= WORKER_RATIO_TARGET else 'not met'}).",
    ]
    return "\n".join(lines) + "\n"
