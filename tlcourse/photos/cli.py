"""``tlcourse train``, ``tlcourse predict`` and ``tlcourse export``: thin commands over photos."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tlcourse.cli_options import friendly_errors, keras_verbosity, weights_option


def _default_out(data: str, seed: int) -> Path:
    return Path("runs") / "train" / f"{Path(data).name.split('.')[0] or 'data'}-seed{seed}"


@click.command()
@click.argument("data", type=click.Path(exists=True))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for model.keras, record.json, labels.txt and figures/. Default: "
    "runs/train/<DATA's name>-seed<SEED>. A folder holding a finished run is never "
    "overwritten; an interrupted run in it resumes.",
)
@click.option(
    "--validation-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Share of each class of train/ to validate on, when DATA has no val/ folder "
    "(default: val/, validation/ or test/ if present, else 0.2).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--image-size", type=click.IntRange(min=32), default=224, show_default=True)
@click.option(
    "--head-epochs",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most epochs for the new head on the frozen backbone (stops early).",
)
@click.option(
    "--finetune-epochs",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="Most epochs of fine-tuning every layer (stops early); 0: keep the backbone frozen.",
)
@click.option("--finetune-lr", type=click.FloatRange(min=0, min_open=True), default=1e-4)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@weights_option
@friendly_errors
def train(
    data,
    out,
    validation_split,
    seed,
    image_size,
    head_epochs,
    finetune_epochs,
    finetune_lr,
    batch_size,
    weights,
) -> None:
    """Train a classifier on DATA, a folder of photos: train/<class>/*, val/<class>/*.

    DATA may also hold one folder per class (a validation share is split off), or be a .tar or
    .zip of either. JPEG, PNG, GIF, BMP and WebP of any size are read. A new head is trained on the
    frozen ImageNet backbone, then every layer is fine-tuned at a low learning rate.
    """
    from tlcourse.config import cache_dir
    from tlcourse.photos.recipe import PhotoConfig
    from tlcourse.photos.recipe import train as run
    from tlcourse.photos.record import check_out, write_run
    from tlcourse.weights import locate_weights

    config = PhotoConfig(
        image_size=image_size,
        resize_to=max(image_size, round(image_size * 256 / 224)),
        batch_size=batch_size,
        head_epochs=head_epochs,
        finetune_epochs=finetune_epochs,
        finetune_learning_rate=finetune_lr,
        seed=seed,
    )
    out = check_out(out or _default_out(data, seed))
    settings = {"data": str(Path(data).resolve()), "validation_split": validation_split}
    settings["config"] = config.to_dict()
    _check_resume(out, settings)
    weights_path = locate_weights(weights)
    result = run(
        data,
        config,
        weights=weights_path,
        validation_split=validation_split,
        workdir=out / "checkpoint",
        feature_store=cache_dir() / "features",
        verbose=keras_verbosity(),
        log=click.echo,
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    record = write_run(result, out, weights_path=weights_path)
    click.echo(
        f"validation accuracy {result.val.accuracy:.2%} ({result.kept}); "
        f"wrote {out / 'model.keras'} and {record}"
    )


def _check_resume(out: Path, settings: dict) -> None:
    """Refuse to resume an interrupted run in ``out`` with other settings.

    A run counts as interrupted once it holds a fine-tuning checkpoint; one that stopped before
    (bad data, no weights) left nothing to resume, and its settings are simply replaced.
    """
    from tlcourse.errors import TLCourseError
    from tlcourse.files import write_json_atomic

    started = out / "checkpoint" / "settings.json"
    if started.exists() and (out / "checkpoint" / "backup").exists():
        before = json.loads(started.read_text())
        if before != settings:
            raise TLCourseError(
                f"{out} holds an interrupted run with other settings ({started}); resuming it "
                "with these would mix two runs. Give another --out, or delete that folder."
            )
        click.echo(f"resuming the interrupted run in {out}")
    write_json_atomic(started, settings)


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True)
@friendly_errors
def predict(model, images, top) -> None:
    """Print the TOP classes of each of IMAGES, with probabilities, by MODEL (a .keras file).

    An image that cannot be read is named on stderr and the others are still predicted; the
    exit status is then 1.
    """
    from tlcourse.errors import DataFormatError
    from tlcourse.photos.model import load
    from tlcourse.photos.predict import predict as run

    loaded, failed = load(model), 0
    for image in images:
        try:
            (prediction,) = run(loaded, [image], top=top)
        except DataFormatError as error:
            click.echo(f"Error: {error}", err=True)
            failed += 1
            continue
        click.echo(prediction.line())
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "format_",
    type=click.Choice(["savedmodel", "tflite"]),
    default="savedmodel",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Where to write it (default: beside MODEL, model-savedmodel/ or model.tflite).",
)
@click.option(
    "--check-image",
    "check_images",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An image to compare the export on (repeatable; default: seeded random images).",
)
@friendly_errors
def export(model, format_, out, check_images) -> None:
    """Export MODEL (a .keras from `tlcourse train`) and check it computes the same outputs."""
    from tlcourse.photos.export import export as run

    target, worst = run(model, format_, out=out, images=check_images or None)
    click.echo(f"wrote {target}: probabilities within {worst:.1g} of {model}'s")
