"""Training speed: ``tlcourse.train.fit`` next to the plain Keras ``model.fit`` a student writes.

Question: how many training images a second does tlcourse manage for E1 (head only, with and
without the feature cache) and E3 (everything trains), at 32 and 96 px, compared with plain
Keras on the same SqueezeNet 1.1 transfer model, measured in the same run on the same machine?

Both sides start from the same uint8 CIFAR-10 arrays and end with a trained model; the clock
covers everything in between:

* plain Keras: set ``layer.trainable`` by hand, ``model.compile(Adam(1e-3),
  "categorical_crossentropy", metrics=["accuracy"])`` with Keras' defaults, resize
  (``tf.image.resize``, skipped at 32 px) and divide by 255 up front, one-hot the labels, then
  ``model.fit(x, y, batch_size=32, epochs=..., validation_data=...)`` on NumPy arrays;
* tlcourse: ``fit(model, train, val, TrainConfig(...), verbose=0)``, which freezes, compiles,
  builds the ``tf.data`` pipeline (resize and normalisation inside it) and, for the cached
  E1, runs the backbone once over every image before the head trains.

Building the model and loading the weights happen before the clock starts, for both.

Slow variants cannot run 30 epochs at 96 px on 2 CPU cores, so each run is cut into measured
pieces: the time before the first epoch (preprocessing, compile, feature extraction), the
first epoch (which holds the train step's graph tracing), and the later epochs (steady state,
median). The ``--epochs`` total is then *projected* as pieces + (epochs - 1) x later epoch.
Each variant runs ``--repeats`` times per size, in alternating order so that a drift in the
machine's load hits both sides alike; each piece is the median over the runs.
The cached E1 is cheap enough to run all ``--epochs`` epochs, so its total is *measured*.
Every epoch includes its validation pass, on both sides.

One untimed warm-up run of each variant on a few images comes first: it pays TensorFlow's
one-time costs (kernel and thread-pool start-up). It cannot take tracing out of the timed
runs: every run builds a fresh model whose train step is traced anew, as it would be for a
student, so tracing stays in the first epoch on both sides.

Run ``python bench/bench_training_speed.py --help`` for the options; ``--quick`` is a CI smoke
check. Results go to ``results/bench/training_speed.{json,md}`` (``--quick``:
``training_speed_quick.*``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tlcourse import provenance
from tlcourse.data import ImageSet, load_cifar10, locate_cifar10, take_per_class
from tlcourse.models import HEAD_LAYERS, transfer_model
from tlcourse.train import TrainConfig, fit, write_json_atomic
from tlcourse.weights import locate_weights

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 32
WARMUP_IMAGES = 64


@dataclass(frozen=True)
class Variant:
    """One way of training, and what it is compared with."""

    key: str
    label: str
    experiment: str
    runner: str  # "plain" or "tlcourse"
    cache_features: bool = False
    baseline: str | None = None  # key of the plain Keras variant it is compared with
    targets: dict[int | None, float] = field(default_factory=dict)  # size (None: any) -> ratio

    def target(self, size: int) -> float | None:
        return self.targets.get(size, self.targets.get(None))


#: In the order they run at each size; the targets are the issue's, over ``--epochs`` epochs.
VARIANTS: tuple[Variant, ...] = (
    Variant("e1-plain", "E1 plain Keras", "E1", "plain"),
    Variant("e1-nocache", "E1 tlcourse, no cache", "E1", "tlcourse", False, "e1-plain"),
    Variant(
        "e1-cache", "E1 tlcourse, cached", "E1", "tlcourse", True, "e1-plain", {32: 4.0, 96: 20.0}
    ),
    Variant("e3-plain", "E3 plain Keras", "E3", "plain"),
    Variant("e3-tlcourse", "E3 tlcourse", "E3", "tlcourse", False, "e3-plain", {None: 1.0}),
)


# --------------------------------------------------------------------------------------------
# Timing one run
# --------------------------------------------------------------------------------------------


class EpochClock(keras.callbacks.Callback):
    """Timestamps of the start of training and of each epoch's end (validation included)."""

    def __init__(self) -> None:
        super().__init__()
        self.train_begin: float | None = None
        self.epoch_ends: list[float] = []
        self.last_logs: dict[str, float] = {}
        self.jit_compile: bool | None = None
        self.trainable_params: int | None = None

    def on_train_begin(self, logs=None) -> None:
        self.train_begin = time.perf_counter()
        self.jit_compile = bool(self.model.jit_compile)
        self.trainable_params = int(sum(np.prod(w.shape) for w in self.model.trainable_weights))

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epoch_ends.append(time.perf_counter())
        self.last_logs = {k: float(v) for k, v in (logs or {}).items()}


@dataclass
class Timing:
    """The measured pieces of one run, in seconds, and what the run trained."""

    before_first_epoch_s: float
    epochs_s: list[float]
    after_last_epoch_s: float
    jit_compile: bool | None
    trainable_params: int | None
    last_logs: dict[str, float]
    collapsed: bool = False
    load_average: float | None = None

    @property
    def total_s(self) -> float:
        return self.before_first_epoch_s + sum(self.epochs_s) + self.after_last_epoch_s


@dataclass
class Measurement:
    """Repeated runs of one variant at one size, combined piece by piece (medians)."""

    runs: list[Timing]

    def _median(self, values) -> float:
        return statistics.median(values)

    @property
    def before_first_epoch_s(self) -> float:
        return self._median(r.before_first_epoch_s for r in self.runs)

    @property
    def first_epoch_s(self) -> float:
        return self._median(r.epochs_s[0] for r in self.runs)

    @property
    def later_epoch_s(self) -> float:
        """Median of every run's epochs after the first, pooled."""
        later = [s for r in self.runs for s in r.epochs_s[1:]]
        return self._median(later or [r.epochs_s[0] for r in self.runs])

    @property
    def after_last_epoch_s(self) -> float:
        return self._median(r.after_last_epoch_s for r in self.runs)

    def total_for(self, epochs: int) -> tuple[float, bool]:
        """``(seconds, projected)`` for ``epochs`` epochs: measured if every run had them."""
        if all(len(r.epochs_s) == epochs for r in self.runs):
            return self._median(r.total_s for r in self.runs), False
        rest = (epochs - 1) * self.later_epoch_s
        pieces = self.before_first_epoch_s + self.first_epoch_s + self.after_last_epoch_s
        return pieces + rest, True


def timed(run: Callable[[list[keras.callbacks.Callback]], Any]) -> tuple[Timing, Any]:
    """Time ``run(callbacks)`` from its first line to its return, cut at the epoch ends.

    Returns the timing and what ``run`` returned.
    """
    clock = EpochClock()
    start = time.perf_counter()
    returned = run([clock])
    end = time.perf_counter()
    if clock.train_begin is None or not clock.epoch_ends:
        raise RuntimeError("The run finished without a single epoch; nothing to time.")
    bounds = [clock.train_begin, *clock.epoch_ends]
    timing = Timing(
        before_first_epoch_s=clock.train_begin - start,
        epochs_s=[b - a for a, b in zip(bounds, bounds[1:], strict=False)],
        after_last_epoch_s=end - clock.epoch_ends[-1],
        jit_compile=clock.jit_compile,
        trainable_params=clock.trainable_params,
        last_logs=clock.last_logs,
    )
    return timing, returned


# --------------------------------------------------------------------------------------------
# The two ways of training
# --------------------------------------------------------------------------------------------


def plain_keras_fit(model, train: ImageSet, val: ImageSet, experiment: str, size: int, epochs: int):
    """What a student writes without tlcourse; returns ``run(callbacks)`` for :func:`timed`."""
    import tensorflow as tf

    def to_inputs(images: np.ndarray) -> np.ndarray:
        x = images.astype("float32") / 255.0
        if images.shape[1:3] != (size, size):
            x = tf.image.resize(x, (size, size)).numpy()
        return x

    def run(callbacks):
        for layer in model.layers:
            layer.trainable = experiment == "E3" or layer.name in HEAD_LAYERS
        model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
        x_train, x_val = to_inputs(train.images), to_inputs(val.images)
        y_train = keras.utils.to_categorical(train.labels, train.num_classes)
        y_val = keras.utils.to_categorical(val.labels, val.num_classes)
        model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            epochs=epochs,
            validation_data=(x_val, y_val),
            callbacks=callbacks,
            verbose=0,
        )

    return run


def tlcourse_fit(model, train: ImageSet, val: ImageSet, config: TrainConfig):
    """``tlcourse.train.fit`` as the course uses it; returns ``run(callbacks)``."""

    def run(callbacks):
        return fit(model, train, val, config, callbacks=callbacks, verbose=0)

    return run


def run_variant(variant, train, val, size, epochs, *, weights, seed) -> Timing:
    """Build a fresh model (untimed), then time one training run of ``variant``."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = transfer_model(classes=train.num_classes, input_shape=(size, size, 3), weights=weights)
    if variant.runner == "plain":
        timing, _ = timed(plain_keras_fit(model, train, val, variant.experiment, size, epochs))
        return timing
    config = TrainConfig(
        experiment=variant.experiment,
        image_size=size,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        learning_rate=1e-3,
        normalization="unit",
        cache_features=variant.cache_features,
        seed=seed,
    )
    timing, result = timed(tlcourse_fit(model, train, val, config))
    timing.collapsed = result.collapsed
    return timing


def measure(variants, train, val, size, args, *, weights) -> dict[str, Measurement]:
    """Run every variant ``args.repeats`` times at ``size``, in alternating order against drift."""
    runs: dict[str, list[Timing]] = {v.key: [] for v in variants}
    for repeat in range(args.repeats):
        for variant in variants if repeat % 2 == 0 else variants[::-1]:
            epochs = args.epochs if variant.cache_features else args.measure_epochs
            timing = run_variant(variant, train, val, size, epochs, weights=weights, seed=args.seed)
            timing.load_average = round(os.getloadavg()[0], 2)
            runs[variant.key].append(timing)
            print(
                f"  {variant.label} at {size} px (repeat {repeat + 1}): {len(timing.epochs_s)} "
                f"epochs in {timing.total_s:.1f} s (before epoch 1 "
                f"{timing.before_first_epoch_s:.1f} s, epochs "
                f"{', '.join(f'{s:.2f}' for s in timing.epochs_s)} s)"
                + (" [collapsed]" if timing.collapsed else ""),
                flush=True,
            )
    return {key: Measurement(timings) for key, timings in runs.items()}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def load_subset(data, train_images: int, val_images: int, seed: int):
    """Real CIFAR-10: ``train_images`` from the training batches, ``val_images`` from the
    test batch (disjoint; only speed is reported), both balanced over the classes."""
    source = locate_cifar10(data, download=False)
    train_full, test_full = load_cifar10(source, download=False)
    classes = train_full.num_classes
    train = train_full.subset(take_per_class(train_full.labels, train_images // classes, seed=seed))
    val = test_full.subset(take_per_class(test_full.labels, val_images // classes, seed=seed))
    return train, val, source


# --------------------------------------------------------------------------------------------
# Rows, table, files
# --------------------------------------------------------------------------------------------


def _run_record(run: Timing) -> dict:
    return {
        "before_first_epoch_s": round(run.before_first_epoch_s, 3),
        "epochs_s": [round(s, 3) for s in run.epochs_s],
        "after_last_epoch_s": round(run.after_last_epoch_s, 3),
        "total_s": round(run.total_s, 3),
        "jit_compile": run.jit_compile,
        "trainable_params": run.trainable_params,
        "collapsed": run.collapsed,
        "last_epoch_logs": {k: round(v, 4) for k, v in run.last_logs.items()},
        "load_average_1min_after": run.load_average,
    }


def make_row(variant, size, measured: Measurement, horizon, n_train, baseline_total) -> dict:
    total, projected = measured.total_for(horizon)
    ratio = baseline_total / total if baseline_total is not None else None
    target = variant.target(size)
    return {
        "variant": variant.key,
        "label": variant.label,
        "experiment": variant.experiment,
        "runner": variant.runner,
        "cache_features": variant.cache_features,
        "image_size": size,
        "pieces_s": {
            "before_first_epoch": round(measured.before_first_epoch_s, 3),
            "first_epoch": round(measured.first_epoch_s, 3),
            "later_epoch": round(measured.later_epoch_s, 3),
            "after_last_epoch": round(measured.after_last_epoch_s, 3),
        },
        "runs": [_run_record(r) for r in measured.runs],
        "epochs": horizon,
        "total_s": round(total, 3),
        "total_is_projection": projected,
        "images_per_second": round(horizon * n_train / total, 1),
        "later_epoch_images_per_second": round(n_train / measured.later_epoch_s, 1),
        "ratio_vs_plain": round(ratio, 3) if ratio is not None else None,
        "target_ratio": target,
        "target_met": (ratio >= target) if target is not None and ratio is not None else None,
        "collapsed_runs": sum(r.collapsed for r in measured.runs),
    }


COLUMNS = (
    "Variant",
    "Size",
    "Before ep. 1 (s)",
    "Epoch 1 (s)",
    "Later (s/epoch)",
    "{epochs} epochs (s)",
    "Images/s",
    "x plain",
    "Target",
    "Met",
)


def table_cells(row: dict) -> list[str]:
    pieces = row["pieces_s"]
    how = "projected" if row["total_is_projection"] else "measured"
    ratio, target, met = row["ratio_vs_plain"], row["target_ratio"], row["target_met"]
    return [
        row["label"],
        f"{row['image_size']} px",
        f"{pieces['before_first_epoch']:.1f}",
        f"{pieces['first_epoch']:.1f}",
        f"{pieces['later_epoch']:.2f}",
        f"{row['total_s']:.1f} ({how})",
        f"{row['images_per_second']:.0f}",
        "1.00 (baseline)" if ratio is None else f"{ratio:.2f}",
        "-" if target is None else f">= {target:g}x",
        "-" if met is None else ("met" if met else "MISSED"),
    ]


def text_table(rows: list[dict], epochs: int) -> str:
    header = [c.format(epochs=epochs) for c in COLUMNS]
    body = [table_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[dict], epochs: int) -> str:
    header = [c.format(epochs=epochs) for c in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def explanation(settings: dict) -> str:
    return (
        f"{settings['train_images']} training and {settings['val_images']} validation images "
        f"(real CIFAR-10), batch size {BATCH_SIZE}, Adam 1e-3, seed {settings['seed']}. "
        f"Totals are for {settings['epochs']} epochs, from uint8 arrays to a trained model "
        "(preprocessing, compile and feature extraction included, model building excluded). "
        f"Each variant ran {settings['repeats']} time(s) per size (alternating order); every "
        "piece is the median over runs. 'projected' = time before epoch 1 + epoch 1 + "
        f"{settings['epochs'] - 1} x the median of the later epochs ({settings['measure_epochs']} "
        "epochs measured a run; a run that collapsed stops early and gives fewer); "
        "'measured' = all epochs really ran. "
        "Images/s = epochs x training images / total. 'x plain' = plain Keras total / this "
        "total on the same experiment and size (above 1: tlcourse is faster). XLA is off on "
        "both sides on a CPU-only machine: Keras' jit_compile='auto' resolves to False there, "
        "as does tlcourse's rule (each run's jit_compile in the JSON says what the trained "
        "model used)."
    )


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_markdown(path: Path, command: str, rows: list[dict], settings: dict, load: dict) -> None:
    text = (
        f"<!-- Generated by `{command}` (bench/bench_training_speed.py). "
        "Do not edit: rerun the command. -->\n\n"
        "# Training speed: tlcourse against plain Keras\n\n"
        f"{markdown_table(rows, settings['epochs'])}\n\n"
        f"{explanation(settings)}\n\n"
        f"Load average (1 min) before / after: {load['before']:.2f} / {load['after']:.2f} on "
        f"{os.cpu_count()} CPUs; the numbers and provenance are in `{path.stem}.json`.\n"
    )
    write_text_atomic(path, text)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Received: {text}")
    return value


def sizes_list(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 32:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated image sides of at least 32, e.g. 32,96. Received: {text!r}"
        )
    return sizes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 (official python layout, its .tar.gz or an image-folder tree). "
        "Defaults to $TLCOURSE_DATA, then the tlcourse cache.",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="SqueezeNet 1.1 weights (.npz or .pth). Defaults to $TLCOURSE_WEIGHTS, then the "
        "cache.",
    )
    parser.add_argument("--sizes", type=sizes_list, default=None, help="Image sides (32,96).")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="Epochs the totals are for (30)."
    )
    parser.add_argument(
        "--measure-epochs",
        type=positive_int,
        default=None,
        help="Epochs really run for the slow variants; at least 2 (2).",
    )
    parser.add_argument(
        "--train-images",
        type=positive_int,
        default=None,
        help="Training images, a multiple of 10 (10000).",
    )
    parser.add_argument(
        "--val-images", type=positive_int, default=None, help="Validation images (2500)."
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="Runs of each variant per size, in alternating order; pieces are medians (1).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed (0).")
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "results" / "bench",
        help="Folder for training_speed.json and .md (results/bench).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Smoke check: 200/100 images, 32 and 48 px, 3 epochs (2 measured); under 2 "
        "minutes. Writes training_speed_quick.*.",
    )
    args = parser.parse_args(argv)
    defaults = (
        {
            "sizes": [32, 48],
            "epochs": 3,
            "measure_epochs": 2,
            "repeats": 1,
            "train_images": 200,
            "val_images": 100,
        }
        if args.quick
        else {
            "sizes": [32, 96],
            "epochs": 30,
            # 10,000 images: at 2,000, Keras' fixed per-epoch costs hide the steady state.
            "measure_epochs": 2,
            "repeats": 1,
            "train_images": 10000,
            "val_images": 2500,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.measure_epochs < 2:
        parser.error(
            "--measure-epochs must be at least 2 (epoch 1 holds tracing; later epochs give "
            f"the steady state). Received: {args.measure_epochs}"
        )
    args.measure_epochs = min(args.measure_epochs, args.epochs)
    for name in ("train_images", "val_images"):
        if getattr(args, name) % 10:
            parser.error(
                f"--{name.replace('_', '-')} must be a multiple of 10 (balanced over the ten "
                f"classes). Received: {getattr(args, name)}"
            )
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    weights = locate_weights(args.weights, download=False)
    train, val, source = load_subset(args.data, args.train_images, args.val_images, args.seed)
    command = " ".join(["python", "bench/bench_training_speed.py", *sys.argv[1:]])
    print(f"{command}\n{len(train)} training / {len(val)} validation images from {source}")
    # Collected before the clock runs: the commit and versions of the code that is measured.
    base = provenance.collect(seed=args.seed, data_path=source, weights_path=weights)
    load = {"before": os.getloadavg()[0]}
    print(f"load average (1 min) before: {load['before']:.2f} on {os.cpu_count()} CPUs")

    warm = train.subset(np.arange(WARMUP_IMAGES)), val.subset(np.arange(WARMUP_IMAGES // 2))
    for variant in VARIANTS:  # untimed: TensorFlow's one-time start-up costs
        run_variant(variant, *warm, min(args.sizes), 1, weights=weights, seed=args.seed)

    rows = []
    for size in args.sizes:
        measured = measure(VARIANTS, train, val, size, args, weights=weights)
        totals = {key: m.total_for(args.epochs)[0] for key, m in measured.items()}
        for variant in VARIANTS:
            baseline = totals[variant.baseline] if variant.baseline else None
            rows.append(
                make_row(variant, size, measured[variant.key], args.epochs, len(train), baseline)
            )
    load["after"] = os.getloadavg()[0]

    settings = {
        "train_images": len(train),
        "val_images": len(val),
        "sizes": args.sizes,
        "epochs": args.epochs,
        "measure_epochs": args.measure_epochs,
        "repeats": args.repeats,
        "batch_size": BATCH_SIZE,
        "seed": args.seed,
        "normalization": "unit",
        "quick": args.quick,
    }
    print()
    print(text_table(rows, args.epochs))
    print()
    print(explanation(settings))
    print(f"load average (1 min) after: {load['after']:.2f}")

    stem = "training_speed_quick" if args.quick else "training_speed"
    record = {
        "benchmark": "training_speed",
        "generated_by": command,
        "settings": settings,
        "how_to_read": explanation(settings),
        "rows": rows,
        "load_average_1min": {k: round(v, 2) for k, v in load.items()},
        "provenance": {
            **base,
            "wall_time_s": round(time.perf_counter() - started, 1),
        },
    }
    write_json_atomic(args.out / f"{stem}.json", record)
    write_markdown(args.out / f"{stem}.md", command, rows, settings, load)
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
