"""What every ``tlcourse`` command shares: clean errors, and the weights and data options."""

from __future__ import annotations

import functools
import sys

import click

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.errors import TLCourseError


def friendly_errors(command):
    """Turn tlcourse's own errors into a clean message and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TLCourseError as error:
            raise click.ClickException(str(error)) from error

    return wrapper


def keras_verbosity() -> int:
    """Keras' ``verbose``: a progress bar on a terminal, else one line an epoch (logs, CI)."""
    return 1 if sys.stdout.isatty() else 2


data_option = click.option(
    "--data",
    envvar=DATA_ENV,
    type=click.Path(exists=True),
    help=f"CIFAR-10: a cifar-10-batches-py folder, the official .tar.gz, or an image-folder "
    f"tree. Defaults to ${DATA_ENV}, then the cache, then the official download.",
)
weights_option = click.option(
    "--weights",
    envvar=WEIGHTS_ENV,
    type=click.Path(exists=True, dir_okay=False),
    help=f"SqueezeNet 1.1 ImageNet weights (.npz in torchvision layout or torchvision's .pth). "
    f"Defaults to ${WEIGHTS_ENV}, then the cache, then torchvision's download.",
)
