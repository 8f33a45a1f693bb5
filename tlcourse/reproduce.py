"""``tlcourse reproduce``: run the study's experiments under a budget and record everything.

For each seed, each experiment (E1, E2, E3 or a subset) trains a fresh transfer model; the
test set is used once, at the end, on the model with the best validation accuracy. Every
run is written to ``<out>/<budget>/`` as a JSON record (per-epoch metrics, final numbers,
provenance) with its figures as PNG, and ``<out>/README.md``, a table made from every record
under ``<out>``, puts our numbers next to the study's. ``<out>`` defaults to ``runs`` in the
current folder, never the project's tracked ``results/``: recording there takes
``out="results"`` (``--out results``) on purpose. Files are written whole (temporary file,
then rename): a run that fails leaves no half-written file, and earlier finished runs stay as
they are.

The same seed gives the same numbers on the same machine: every seed is set before each model
is built (its new head and its dropout draw from them), so a run does not depend on what ran
before it in the process, and a rerun of a finished run trains afresh rather than claiming to
resume from the checkpoint folder it left. (A run resumed after an interruption is not yet
the uninterrupted run to the last digit: ``fit`` restarts the shuffling and dropout draws.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tlcourse import config as cfg
from tlcourse.data import load_cifar10, locate_cifar10
from tlcourse.freeze import EXPERIMENTS
from tlcourse.imageset import ImageSet
from tlcourse.pipeline import make_dataset, stratified_split, take_per_class
from tlcourse.protocols import DEFAULT_PROTOCOL, check_protocol
from tlcourse.report import RECORD_KIND, write_summary
from tlcourse.train import TrainConfig, TrainResult, fit, write_json_atomic

SCHEMA_VERSION = 1
#: Where ``reproduce`` writes by default: not ``results/``, the project's tracked records.
DEFAULT_OUT = "runs"


@dataclass(frozen=True)
class Budget:
    """How much of the data and how many epochs a reproduction uses."""

    name: str
    description: str
    epochs: int
    train_per_class: int | None = None  # images per class drawn from the training set
    test_per_class: int | None = None


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        "smoke",
        "a small real subset (300 training and 100 test images a class), 4 epochs: "
        "a minute or two on 2 CPU cores; shows the pipeline works, not the study's numbers",
        epochs=4,
        train_per_class=300,
        test_per_class=100,
    ),
    "paper": Budget(
        "paper",
        "the study's protocol in full: all 50,000 training images (80/20 split), 30 epochs, "
        "the 10,000 test images",
        epochs=30,
    ),
}


def check_experiments(experiments: Sequence[str]) -> tuple[str, ...]:
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown or not experiments:
        raise ValueError(
            f"Experiments must be a non-empty subset of {', '.join(EXPERIMENTS)}. "
            f"Received: experiments={list(experiments)}"
        )
    return tuple(dict.fromkeys(experiments))


def check_budget(budget: str) -> Budget:
    if budget not in BUDGETS:
        raise ValueError(f"`budget` must be one of {list(BUDGETS)}. Received: budget={budget!r}")
    return BUDGETS[budget]


@dataclass
class PreparedData:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    source: Path


def prepare_data(budget: Budget, *, data=None, seed: int = 0) -> PreparedData:
    """Load CIFAR-10, take the budget's subset, and split 80/20 stratified by ``seed``."""
    source = locate_cifar10(data)
    train_full, test_full = load_cifar10(source)
    if budget.train_per_class is not None:
        train_full = train_full.subset(
            take_per_class(train_full.labels, budget.train_per_class, seed=seed)
        )
    if budget.test_per_class is not None:
        test_full = test_full.subset(
            take_per_class(test_full.labels, budget.test_per_class, seed=0)
        )
    train_idx, val_idx = stratified_split(train_full.labels, 0.2, seed=seed)
    return PreparedData(train_full.subset(train_idx), train_full.subset(val_idx), test_full, source)


def run_config(
    experiment: str, budget: Budget, protocol: str, seed: int, **overrides
) -> TrainConfig:
    """The ``TrainConfig`` of one run: the study's defaults, the protocol's changes, overrides."""
    changes = {
        "epochs": budget.epochs,
        **check_protocol(protocol).settings(experiment),
        **overrides,
    }
    return TrainConfig(experiment=experiment, seed=seed, **changes)


def _workdir(config: TrainConfig, budget: Budget, data_source: Path, weights_sha256: str) -> Path:
    """A cache folder for one run's checkpoints, keyed by everything that decides the run."""
    key = json.dumps(
        {
            "config": config.to_dict(),
            "budget": dataclasses.asdict(budget),
            "data": str(data_source),
            "weights": weights_sha256,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cfg.cache_dir() / "runs" / f"{config.experiment}-{digest}"


def _fresh_unless_interrupted(workdir: Path) -> Path:
    """``workdir``, emptied when it holds a finished run rather than an interrupted one.

    An interrupted run leaves its checkpoint (``backup/``) and its history so far, and
    :func:`~tlcourse.train.fit` resumes from them. A finished run leaves only its history
    (Keras deletes the checkpoint at the end), and the model is not kept: the run has to be
    trained again, from the start, and its old history must not count as a resume.
    """
    if (workdir / "history.json").exists() and not (workdir / "backup").exists():
        shutil.rmtree(workdir)
    return workdir


def reproduce(
    experiments: Sequence[str] = ("E1", "E2", "E3"),
    *,
    budget: str = "smoke",
    seeds: Sequence[int] = (0,),
    out: str | os.PathLike = DEFAULT_OUT,
    data=None,
    weights=None,
    protocol: str = DEFAULT_PROTOCOL,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run ``experiments`` for each seed under ``budget``; write records, figures, table.

    ``out`` defaults to ``runs`` (relative to the current folder); ``out="results"`` records
    into the project's tracked ``results/``, on purpose. Returns the run records (as written
    to ``<out>/<budget>/<run>.json``).
    """
    import keras

    from tlcourse import plots, provenance
    from tlcourse.evaluate import evaluate_model
    from tlcourse.models import transfer_model
    from tlcourse.weights import locate_weights

    provenance.git_commit()  # pin the commit now: the code that runs is the code loaded now
    experiments = check_experiments(experiments)
    plan = check_budget(budget)
    check_protocol(protocol)
    weights_path = locate_weights(weights)
    out_dir = Path(out) / plan.name
    records = []
    for seed in seeds:
        data_split = prepare_data(plan, data=data, seed=seed)
        log(
            f"seed {seed}: {len(data_split.train)} training, {len(data_split.val)} validation, "
            f"{len(data_split.test)} test images from {data_split.source}"
        )
        if seed == seeds[0]:
            fig = plots.plot_sample_grid(
                data_split.train.images, data_split.train.labels, data_split.train.class_names
            )
            plots.save_figure(fig, out_dir / "figures" / "samples.png")
        base = provenance.collect(seed=seed, data_path=data_split.source, weights_path=weights_path)
        trained: dict[str, tuple] = {}
        for experiment in experiments:
            config = run_config(experiment, plan, protocol, seed)
            log(f"{experiment} (seed {seed}): {config.to_dict()}")
            # The new head's initial weights and its dropout's seed are drawn here, before
            # fit sets the seed: seed them, so they do not depend on what ran before.
            keras.utils.set_random_seed(seed)
            model = transfer_model(
                classes=len(data_split.train.class_names),
                input_shape=(config.image_size, config.image_size, 3),
                weights=weights_path,
                dropout=config.dropout,
            )
            result = fit(
                model,
                data_split.train,
                data_split.val,
                config,
                workdir=_fresh_unless_interrupted(
                    _workdir(config, plan, data_split.source, base["weights"]["sha256"])
                ),
                verbose=verbose,
                feature_store=cfg.cache_dir() / "features",
            )
            for note in result.notes:
                log(f"{experiment} (seed {seed}): {note}")
            trained[experiment] = (model, result)
            if seed == seeds[0]:  # the network, coloured by what trains in this experiment
                fig = plots.plot_network(
                    model, title=f"SqueezeNet 1.1 transfer model, {experiment}"
                )
                plots.save_figure(fig, out_dir / "figures" / f"network-{experiment}.png")
        best = _best_run(trained)
        test_eval = None
        if best is not None:
            model, result = trained[best]
            test_eval = evaluate_model(
                model, _test_dataset(data_split.test, result.config), data_split.test.class_names
            )
            log(f"test accuracy of {best} (best validation accuracy): {test_eval.accuracy:.2%}")
        for experiment, (_model, result) in trained.items():
            record = _record(
                experiment,
                result,
                plan,
                protocol,
                data_split,
                base,
                test_eval if experiment == best else None,
            )
            name = run_name(experiment, protocol, seed)
            fig = plots.plot_history(
                result.history,
                title=f"{experiment} ({plan.name}, seed {seed})",
                reference=cfg.STUDY_RESULTS[experiment]["val_accuracy"] / 100,
                reference_label="study (validation)",
            )
            plots.save_figure(fig, out_dir / "figures" / f"{name}-curves.png")
            if experiment == best:
                fig = plots.plot_confusion_matrix(
                    test_eval.confusion_matrix,
                    test_eval.class_names,
                    title=f"{experiment} on the test set (seed {seed})",
                )
                plots.save_figure(fig, out_dir / "figures" / f"{name}-confusion.png")
            write_json_atomic(out_dir / f"{name}.json", record)
            records.append(record)
    table = write_summary(out)
    log(f"wrote {len(records)} run records and {table}")
    return records


def run_name(experiment: str, protocol: str, seed: int) -> str:
    """File stem of a run's record and figures, e.g. ``E3-study-lr1e-4-seed0``."""
    return f"{experiment}-{protocol}-seed{seed}"


def _best_run(trained: dict[str, tuple]) -> str | None:
    """The experiment with the best final validation accuracy, collapsed runs excluded."""
    alive = {e: r for e, (_m, r) in trained.items() if not r.collapsed}
    if not alive:
        return None
    return max(alive, key=lambda e: alive[e].history["val_accuracy"][-1])


def _test_dataset(test: ImageSet, config: TrainConfig):
    return make_dataset(
        test.images,
        test.labels,
        num_classes=len(test.class_names),
        batch_size=256,
        normalization=config.normalization,
        image_size=config.image_size,
    )


def _record(
    experiment: str,
    result: TrainResult,
    budget: Budget,
    protocol: str,
    data_split: PreparedData,
    base_provenance: dict,
    test_eval,
) -> dict:
    history = result.history
    val = history.get("val_accuracy", [])
    best_epoch = max(range(len(val)), key=val.__getitem__) if val else None
    return {
        "kind": RECORD_KIND,
        "schema": SCHEMA_VERSION,
        "experiment": experiment,
        "budget": budget.name,
        "protocol": protocol,
        "status": "collapsed" if result.collapsed else "ok",
        "notes": result.notes,
        "config": result.config.to_dict(),
        "freeze": result.freeze.to_dict(),
        "sizes": {
            "train": len(data_split.train),
            "val": len(data_split.val),
            "test": len(data_split.test),
        },
        "history": history,
        "final": {
            "epochs_run": len(history.get("loss", [])),
            "val_accuracy": val[-1] if val else None,
            "val_loss": history.get("val_loss", [None])[-1],
            "best_val_accuracy": val[best_epoch] if val else None,
            "best_epoch": best_epoch + 1 if best_epoch is not None else None,
            "test_accuracy": test_eval.accuracy if test_eval else None,
        },
        "test": test_eval.to_dict() if test_eval else None,
        "diagnostics": {"fire9_dead_channels": result.dead_channels},
        "study": cfg.STUDY_RESULTS[experiment],
        "provenance": {
            **base_provenance,
            "wall_time_s": round(result.wall_time_s, 2),
            "cpu_time_s": round(result.cpu_time_s, 2),
            "images_per_second": round(result.images_per_second, 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
