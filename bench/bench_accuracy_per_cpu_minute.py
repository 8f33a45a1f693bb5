"""Accuracy per CPU-minute: the course's CPU-hour recipe against the study's protocol.

Question: for every CPU-minute spent training, how much validation accuracy does the CPU-budget
recipe (protocol ``finetune-cpu-hour``: 128 px, ImageNet normalisation, flips and shifts,
batches of 64, Adam warmed up to 3e-4 then cosine-decayed, label smoothing) buy, next to the
study's protocol (``study-lr1e-4``: 32 px, pixels /255, batches of 32, Adam 1e-4 constant)?
And what does an epoch cost in wall time at each resolution?

Both train E3 (every layer) with ``tlcourse.train.fit`` on the same real CIFAR-10 images for
the same number of epochs (each protocol's schedule is laid over that many epochs), one after
the other in one process, after an untimed warm-up of each. Measured for each:

* final validation accuracy (validation images drawn from the training batches, 80/20
  stratified split, as in the study; the test set is not touched);
* CPU time of the process over all its threads, from uint8 arrays to a trained model
  (``time.process_time``: other work on the machine does not inflate it the way it inflates
  wall time) and wall time;
* wall seconds per epoch: the median of the epochs after the first (the first holds tracing).

Accuracy per CPU-minute = validation accuracy in points / CPU-minutes. The ratio printed is the
recipe's over the study's. Both numbers depend on the budget (a short run favours the cheap
protocol; accuracy saturates): compare within one run, at the budget stated.

Run ``python bench/bench_accuracy_per_cpu_minute.py --help``. Results go to
``results/bench/accuracy_per_cpu_minute.{json,md}`` (``--quick``: ``*_quick.*``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import keras
from bench_training_speed import positive_int, write_text_atomic

from tlcourse import provenance
from tlcourse.data import load_cifar10, locate_cifar10, stratified_split, take_per_class
from tlcourse.models import transfer_model
from tlcourse.reproduce import BUDGETS, run_config
from tlcourse.train import fit, write_json_atomic
from tlcourse.weights import locate_weights

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: (protocol, what it is), the baseline first.
PROTOCOLS = (
    ("study-lr1e-4", "the study's protocol (Adam 1e-4 so that E3 does not collapse)"),
    ("finetune-cpu-hour", "the course's CPU-hour recipe"),
)
WARMUP_IMAGES = 64


class EpochClock(keras.callbacks.Callback):
    """Wall seconds of every epoch, validation pass included."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def load_split(data, images_per_class: int, seed: int):
    """``images_per_class`` real training images a class, split 80/20 stratified by ``seed``."""
    source = locate_cifar10(data, download=False)
    train_full, _test = load_cifar10(source, download=False)
    subset = train_full.subset(take_per_class(train_full.labels, images_per_class, seed=seed))
    train_idx, val_idx = stratified_split(subset.labels, 0.2, seed=seed)
    return subset.subset(train_idx), subset.subset(val_idx), source


def train_once(protocol: str, train, val, epochs: int, *, weights, seed: int) -> dict:
    """Train E3 under ``protocol`` for ``epochs`` epochs; accuracy, CPU and wall time."""
    config = run_config("E3", BUDGETS["paper"], protocol, seed, epochs=epochs)
    model = transfer_model(
        classes=len(train.class_names),
        input_shape=(config.image_size, config.image_size, 3),
        weights=weights,
        dropout=config.dropout,
    )
    clock = EpochClock()
    result = fit(model, train, val, config, callbacks=[clock], verbose=0)
    later = clock.seconds[1:] or clock.seconds
    accuracy = 100 * result.history["val_accuracy"][-1]
    cpu_minutes = result.cpu_time_s / 60
    return {
        "protocol": protocol,
        "config": config.to_dict(),
        "val_accuracy": round(accuracy, 2),
        "cpu_minutes": round(cpu_minutes, 3),
        "wall_minutes": round(result.wall_time_s / 60, 3),
        "epoch_wall_s": [round(s, 2) for s in clock.seconds],
        "later_epoch_wall_s": round(statistics.median(later), 2),
        "points_per_cpu_minute": round(accuracy / cpu_minutes, 3),
        "collapsed": result.collapsed,
        "load_average_after": round(os.getloadavg()[0], 2),
    }


COLUMNS = (
    "Protocol",
    "Size",
    "Val acc %",
    "CPU-min",
    "Wall min",
    "Wall s/epoch",
    "Points per CPU-min",
    "x study",
)


def table_cells(row: dict, baseline: dict) -> list[str]:
    ratio = row["points_per_cpu_minute"] / baseline["points_per_cpu_minute"]
    return [
        row["protocol"] + (" (collapsed)" if row["collapsed"] else ""),
        f"{row['config']['image_size']} px",
        f"{row['val_accuracy']:.2f}",
        f"{row['cpu_minutes']:.2f}",
        f"{row['wall_minutes']:.2f}",
        f"{row['later_epoch_wall_s']:.1f}",
        f"{row['points_per_cpu_minute']:.2f}",
        "1.00 (baseline)" if row is baseline else f"{ratio:.2f}",
    ]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(table_cells(r, rows[0])) + " |" for r in rows]
    return "\n".join(lines)


def explanation(settings: dict) -> str:
    return (
        f"E3 (every layer trains) on {settings['train_images']} training and "
        f"{settings['val_images']} validation images (real CIFAR-10, 80/20 stratified split "
        f"of the training batches, seed {settings['seed']}), {settings['epochs']} epochs under "
        "each protocol's own settings (tlcourse.protocols; a schedule is laid over those "
        "epochs). CPU-min: CPU time of the process, all threads, from uint8 arrays to a "
        "trained model (building the model excluded). Wall s/epoch: median wall time of the "
        "epochs after the first, validation pass included. Points per CPU-min: validation "
        "accuracy in points / CPU-minutes; 'x study' is the ratio to the study's protocol. "
        "A short budget favours the cheap protocol, since accuracy saturates with training: "
        "compare within one run, at the budget stated."
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--data", default=None, help="CIFAR-10; defaults to $TLCOURSE_DATA.")
    parser.add_argument(
        "--weights", default=None, help="SqueezeNet 1.1 weights; defaults to $TLCOURSE_WEIGHTS."
    )
    parser.add_argument(
        "--images-per-class",
        type=positive_int,
        default=None,
        help="Training-batch images a class, split 80/20 into training and validation (500).",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="Epochs (3).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (0).")
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "results" / "bench",
        help="Folder for accuracy_per_cpu_minute.json and .md (results/bench).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Smoke check: 20 images a class, 2 epochs; writes accuracy_per_cpu_minute_quick.*.",
    )
    args = parser.parse_args(argv)
    defaults = (
        {"images_per_class": 20, "epochs": 2}
        if args.quick
        else {
            "images_per_class": 500,
            "epochs": 3,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (the first holds tracing). Got {args.epochs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    weights = locate_weights(args.weights, download=False)
    train, val, source = load_split(args.data, args.images_per_class, args.seed)
    command = " ".join(["python", "bench/bench_accuracy_per_cpu_minute.py", *sys.argv[1:]])
    print(f"{command}\n{len(train)} training / {len(val)} validation images from {source}")
    base = provenance.collect(seed=args.seed, data_path=source, weights_path=weights)
    load_before = os.getloadavg()[0]

    warm_train = train.subset(range(WARMUP_IMAGES))
    warm_val = val.subset(range(WARMUP_IMAGES // 2))
    for protocol, _ in PROTOCOLS:  # untimed: TensorFlow's one-time start-up costs
        train_once(protocol, warm_train, warm_val, 2, weights=weights, seed=args.seed)
    rows = []
    for protocol, what in PROTOCOLS:
        print(f"training E3 under {protocol} ({what}) ...", flush=True)
        rows.append(train_once(protocol, train, val, args.epochs, weights=weights, seed=args.seed))

    settings = {
        "train_images": len(train),
        "val_images": len(val),
        "epochs": args.epochs,
        "seed": args.seed,
        "quick": args.quick,
    }
    table = markdown_table(rows)
    print(f"\n{table}\n\n{explanation(settings)}")
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    stem = "accuracy_per_cpu_minute" + ("_quick" if args.quick else "")
    record = {
        "benchmark": "accuracy_per_cpu_minute",
        "generated_by": command,
        "settings": settings,
        "how_to_read": explanation(settings),
        "rows": rows,
        "ratio_points_per_cpu_minute": round(
            rows[1]["points_per_cpu_minute"] / rows[0]["points_per_cpu_minute"], 3
        ),
        "load_average_1min": load,
        "provenance": {**base, "wall_time_s": round(time.perf_counter() - started, 1)},
    }
    write_json_atomic(args.out / f"{stem}.json", record)
    write_text_atomic(
        args.out / f"{stem}.md",
        f"<!-- Generated by `{command}` (bench/bench_accuracy_per_cpu_minute.py). Do not edit: "
        "rerun the command. -->\n\n# Accuracy per CPU-minute: CPU-hour recipe against the "
        f"study's protocol\n\n{table}\n\n{explanation(settings)}\n\nLoad average (1 min) "
        f"before / after: {load['before']:.2f} / {load['after']:.2f} on {os.cpu_count()} "
        f"CPUs; numbers and provenance in `{stem}.json`.\n",
    )
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
