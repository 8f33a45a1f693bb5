"""Photos: ``tlcourse train`` next to the Keras transfer-learning guide's way, on one folder.

Question: how many images a second, loading plus training, does ``tlcourse.photos.train``
manage on a folder of real photos, against the same network trained the way the Keras guide
does it: ``keras.utils.image_dataset_from_directory(image_size=(224, 224), batch_size=32)``
and plain ``model.fit``? Both are measured in one run, on the same folder, one after the other.

Two stages, each timed from the folder on disk to a trained model:

* **frozen backbone, new head** for ``--head-epochs`` epochs. Keras side: backbone layers set
  ``trainable = False``, ``compile(Adam(1e-4), categorical cross-entropy)``, ``fit`` on the
  folder's batches (every epoch decodes every image and runs the backbone over it).
  tlcourse side: ``train(..., PhotoConfig(finetune_epochs=0))``, which lists and checks the
  files, runs the backbone once over every image and its mirror image, then trains the head on
  those features (early stopping off: patience = epochs, so both run every epoch).
* **fine-tuning every layer** for ``--finetune-epochs`` epochs. Keras side: the same model,
  unfrozen, recompiled at 1e-4, ``fit`` on the folder's batches through
  ``RandomFlip("horizontal")``. tlcourse side: its fine-tuning stage (random crops and flips from
  a 256 px centre square), timed alone (``times_s["finetune_s"]``). Reported whole (the first
  epoch holds graph tracing), and per epoch in steady state: the two sides' epochs alternate
  for ``--rounds`` rounds and the median after the first round is compared (on a busy 2-core
  machine one epoch against one is noise; alternating lets a change of load hit both sides).

Images per second = training images x epochs / wall seconds. Ratio = tlcourse's rate over the
Keras side's (> 1: tlcourse is faster). Both sides decode with ``tf.io.decode_image``; the
Keras side resizes straight to 224 px, tlcourse to 256 then crops 224. Every epoch includes its
validation pass on both sides. Graph tracing is in the timed runs on both sides.

Run ``python bench/bench_photos.py --help``. Results: ``results/bench/photos.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
from bench_training_speed import positive_int

from tlcourse import provenance
from tlcourse.analysis import markdown_table
from tlcourse.determinism import seed_everything
from tlcourse.files import write_json_atomic, write_text_atomic
from tlcourse.photos import PhotoConfig, open_folder, train
from tlcourse.photos.folders import extracted
from tlcourse.photos.model import build_network
from tlcourse.weights import locate_weights

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "flowers-256.tar"
TARGETS = {"frozen": 5.0, "finetune": 1.0}


def subset(source: Path, target: Path, train_per_class: int, val_per_class: int) -> Path:
    """The first files of each class of ``source``'s train/ and val/, copied to ``target``."""
    root = extracted(source) if source.is_file() else source
    folder = open_folder(root, check_images=False)
    for split, files, per_class in (
        ("train", folder.train, train_per_class),
        ("val", folder.val, val_per_class),
    ):
        taken: dict[int, int] = {}
        for path, label in zip(files.paths, files.labels.tolist(), strict=True):
            if taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                out = target / split / folder.class_names[label] / Path(path).name
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, out)
    return target


def keras_guide(folder: Path, weights: Path, head_epochs: int, finetune_epochs: int, seed: int):
    """The guide's way: image_dataset_from_directory and model.fit.

    Returns (frozen stage s, fine-tuning s).
    """
    seed_everything(seed)
    start = time.perf_counter()
    train_ds, val_ds = guide_datasets(folder, seed)
    model = build_network(len(train_ds.class_names), image_size=224, weights=weights, dropout=0.0)
    for layer in model.layers:
        layer.trainable = layer.name == "head_dense"
    model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=head_epochs, verbose=0)
    frozen_s = time.perf_counter() - start

    start = time.perf_counter()
    for layer in model.layers:
        layer.trainable = True
    model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", metrics=["accuracy"])
    model.fit(flipped(train_ds, seed), validation_data=val_ds, epochs=finetune_epochs, verbose=0)
    return frozen_s, time.perf_counter() - start


def guide_datasets(folder: Path, seed: int):
    """The guide's batches: ``image_dataset_from_directory`` at 224 px, 32 a batch."""
    common = {"image_size": (224, 224), "batch_size": 32, "label_mode": "categorical"}
    train_ds = keras.utils.image_dataset_from_directory(
        folder / "train", shuffle=True, seed=seed, verbose=False, **common
    )
    val_ds = keras.utils.image_dataset_from_directory(
        folder / "val", shuffle=False, verbose=False, **common
    )
    return train_ds, val_ds


def flipped(dataset, seed: int):
    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    return dataset.map(lambda x, y: (flip(x, training=True), y))


def interleaved_epochs(folder: Path, weights: Path, rounds: int, seed: int) -> tuple[float, float]:
    """Median fine-tuning epoch (after the first) of each side, their epochs alternating.

    The same network, compiled at Adam 1e-4: the guide's batches through ``RandomFlip``, then
    tlcourse's streamed crops and flips (:func:`tlcourse.photos.pipeline.photo_dataset`) and
    its compile. Alternating epochs makes a drift in the machine's load hit both sides alike.
    """
    from tlcourse.photos.pipeline import photo_dataset
    from tlcourse.photos.recipe import _compile

    seed_everything(seed)
    files = open_folder(folder)
    guide_train, guide_val = guide_datasets(folder, seed)
    config = PhotoConfig(seed=seed)
    common = {"image_size": 224, "resize_to": 256, "batch_size": 32}
    sides = []
    for datasets in (
        (flipped(guide_train, seed), guide_val),
        (
            photo_dataset(files.train, training=True, seed=seed, **common),
            photo_dataset(files.val, **common),
        ),
    ):
        model = build_network(files.num_classes, image_size=224, weights=weights, dropout=0.0)
        _compile(model, 1e-4, config)
        sides.append((model, datasets, []))
    for epoch in range(rounds):
        for model, (train_ds, val_ds), seconds in sides:
            start = time.perf_counter()
            model.fit(
                train_ds,
                validation_data=val_ds,
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=False,
                verbose=0,
            )
            seconds.append(time.perf_counter() - start)
    guide, ours = (statistics.median(seconds[1:]) for _, _, seconds in sides)
    return guide, ours


def tlcourse_way(folder: Path, weights: Path, head_epochs: int, finetune_epochs: int, seed: int):
    """``tlcourse.photos.train``, no stored features: (frozen stage s, fine-tuning s)."""
    quiet = {"weights": weights, "verbose": 0, "log": lambda line: None}
    frozen = PhotoConfig(
        head_epochs=head_epochs, head_patience=head_epochs, finetune_epochs=0, seed=seed
    )
    start = time.perf_counter()
    train(folder, frozen, **quiet)
    frozen_s = time.perf_counter() - start
    tuned = PhotoConfig(
        head_epochs=1, finetune_epochs=finetune_epochs, finetune_patience=finetune_epochs, seed=seed
    )
    return frozen_s, train(folder, tuned, **quiet).times_s["finetune_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="train/ + val/ photos")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--train-per-class", type=positive_int, default=100)
    parser.add_argument("--val-per-class", type=positive_int, default=40)
    # 20: fewer than the head's early stopping ran on the whole flowers set (48 epochs).
    parser.add_argument("--head-epochs", type=positive_int, default=20)
    parser.add_argument("--finetune-epochs", type=positive_int, default=3)
    parser.add_argument("--rounds", type=positive_int, default=5, help="alternating epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "bench")
    args = parser.parse_args(argv)

    provenance.git_commit()
    weights = locate_weights(args.weights)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TLCOURSE_CACHE"] = str(Path(tmp) / "cache")  # no features from earlier runs
        folder = subset(args.data, Path(tmp) / "photos", args.train_per_class, args.val_per_class)
        n_train = len(open_folder(folder, check_images=False).train)
        epochs = (args.head_epochs, args.finetune_epochs)
        guide = keras_guide(folder, weights, *epochs, args.seed)
        ours = tlcourse_way(folder, weights, *epochs, args.seed)
        steady = interleaved_epochs(folder, weights, args.rounds, args.seed)
        guide, ours = (*guide, steady[0]), (*ours, steady[1])

    rows = []
    stages = (
        ("frozen, whole stage", "frozen", epochs[0]),
        ("fine-tuning, whole stage", "finetune", epochs[1]),
        ("fine-tuning, one epoch (alternating, median)", "finetune", 1),
    )
    for i, (stage, target, stage_epochs) in enumerate(stages):
        rates = [n_train * stage_epochs / side[i] for side in (guide, ours)]
        rows.append(
            {
                "stage": stage,
                "epochs": stage_epochs,
                "keras_guide_s": round(guide[i], 2),
                "tlcourse_s": round(ours[i], 2),
                "keras_guide_images_per_s": round(rates[0], 1),
                "tlcourse_images_per_s": round(rates[1], 1),
                "ratio": round(rates[1] / rates[0], 2),
                "target": TARGETS[target],
                "met": rates[1] / rates[0] >= TARGETS[target],
            }
        )
    header = ("Stage", "Epochs", "Keras guide (s)", "tlcourse (s)", "Images/s guide")
    header += ("Images/s tlcourse", "Ratio", "Target")
    cells = [
        (
            r["stage"],
            str(r["epochs"]),
            str(r["keras_guide_s"]),
            str(r["tlcourse_s"]),
            str(r["keras_guide_images_per_s"]),
            str(r["tlcourse_images_per_s"]),
            f"{r['ratio']}x",
            f">= {r['target']}x ({'met' if r['met'] else 'not met'})",
        )
        for r in rows
    ]
    table = markdown_table(header, cells)
    print(table)
    record = {
        "question": __doc__.split("\n\n")[1],
        "settings": {**vars(args), "data": str(args.data), "out": str(args.out), "train": n_train},
        "rows": rows,
        "provenance": provenance.collect(seed=args.seed, data_path=args.data, weights_path=weights),
    }
    write_json_atomic(args.out / "photos.json", record)
    command = " ".join(["python", *sys.argv])
    write_text_atomic(
        args.out / "photos.md",
        f"# Photos: tlcourse train against the Keras guide's way\n\nGenerated by `{command}` "
        f"on {record['provenance']['date']} ({os.cpu_count()} CPUs, {n_train} training images "
        f"of the flowers set); numbers and provenance in `photos.json`. See "
        f"`bench/bench_photos.py` for what is timed.\n\n{table}",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
