"""The ``tlcourse`` command: thin subcommands over the library, no logic of their own."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from tlcourse.cli_options import data_option as _data_option  # noqa: E402
from tlcourse.cli_options import friendly_errors as _friendly_errors  # noqa: E402
from tlcourse.cli_options import keras_verbosity  # noqa: E402
from tlcourse.cli_options import weights_option as _weights_option  # noqa: E402
from tlcourse.protocols import DEFAULT_PROTOCOL, PROTOCOLS  # noqa: E402

EXPERIMENT_CHOICES = ("E1", "E2", "E3")


def _seeds(ctx, param, value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"give seeds as integers separated by commas, e.g. 0,1,2 (got {value!r})"
        ) from None
    if any(s < 0 for s in seeds):
        raise click.BadParameter(f"seeds must be >= 0 (got {value!r})")
    return seeds


@click.group()
@click.version_option(package_name="tlcourse")
def main() -> None:
    """Transfer learning with SqueezeNet 1.1 on CIFAR-10: reproduce the study, inspect data."""
    from tlcourse.config import resolve_path_variables

    resolve_path_variables()


@main.command()
@click.argument("experiments", nargs=-1, type=click.Choice(EXPERIMENT_CHOICES))
@click.option(
    "--budget",
    type=click.Choice(["smoke", "paper"]),
    default="smoke",
    show_default=True,
    help="smoke: a small real subset in a minute or two; paper: the study's protocol in full.",
)
@click.option("--seeds", default="0", show_default=True, callback=_seeds, help="e.g. 0,1,2")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder for run records, figures and the table, relative to the current folder. "
    "The default, runs, keeps a trial run out of the project's tracked results/; give "
    "--out results to record into the project's results on purpose.",
)
@click.option(
    "--protocol",
    type=click.Choice(list(PROTOCOLS)),
    default=DEFAULT_PROTOCOL,
    show_default=True,
    help="study: exactly as written (Adam 1e-3 everywhere; E2/E3 usually collapse); "
    "study-lr1e-4: Adam 1e-4 when the backbone trains; the others are the better recipe's "
    "steps (see tlcourse.protocols).",
)
@_data_option
@_weights_option
@_friendly_errors
def reproduce(experiments, budget, seeds, out, protocol, data, weights) -> None:
    """Run the study's experiments E1, E2, E3 (default: all) and write results to --out."""
    from tlcourse.reproduce import reproduce as run

    run(
        experiments or EXPERIMENT_CHOICES,
        budget=budget,
        seeds=seeds,
        out=out,
        data=data,
        weights=weights,
        protocol=protocol,
        verbose=keras_verbosity(),
        log=click.echo,
    )


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@_friendly_errors
def report(folder) -> None:
    """Regenerate FOLDER/README.md (study vs ours) from the run records under FOLDER."""
    from tlcourse.report import write_summary

    click.echo(write_summary(folder))


@main.command()
@_data_option
@_weights_option
def info(data, weights) -> None:
    """Say which data and weights tlcourse would use, where they are, and whether they work.

    The weights are read and checked, the data's layout and classes too (CIFAR-10 for
    `reproduce`, any image folder for `train`): the exit status is 1 when either is unusable.
    """
    from tlcourse.checkup import check_data, check_weights
    from tlcourse.config import cache_dir
    from tlcourse.provenance import package_versions

    click.echo(f"cache:   {cache_dir()}")
    usable = True
    for label, check, value in (("data", check_data, data), ("weights", check_weights, weights)):
        ok, message = check(value)
        usable = usable and ok
        click.echo(f"{label + ':':8} {message}")
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    click.echo(f"versions: {versions}")
    if not usable:
        raise SystemExit(1)


@main.group()
def book() -> None:
    """The course book (book/): build its HTML."""


@book.command("build")
@click.option("--lenient", is_flag=True, help="Keep going on warnings instead of failing.")
@_friendly_errors
def book_build(lenient) -> None:
    """Build book/_build/html, executing every page against results/ (offline, ~1-2 min)."""
    from tlcourse.book import build

    click.echo(build(strict=not lenient) / "index.html")


from tlcourse.grading.cli import course, exercises, grade  # noqa: E402

main.add_command(grade)
main.add_command(course)
main.add_command(exercises)

from tlcourse.photos.cli import export, predict, train  # noqa: E402

main.add_command(train)
main.add_command(predict)
main.add_command(export)

if __name__ == "__main__":
    main()
