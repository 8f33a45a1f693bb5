"""The files a graded kernel and the grader exchange: inputs in, plain results out.

Both are ``.npz`` files of plain arrays (numbers, booleans, text; never pickles). A result file
holds what a probe recorded, or one entry :data:`ERROR_KEY` with the message of what went wrong.
The grader reads result files as untrusted data: no link is followed, the size is bounded and
``allow_pickle`` is off.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

#: Where in the submission's folder the exchanged files live.
FOLDER = ".tlcourse-probes"
INPUTS_FILE = "inputs.npz"
ERROR_KEY = "__error__"
#: Largest result file read back (a few model summaries and image batches: a few MB).
MAX_RESULT_BYTES = 64 * 2**20


def result_name(grade_id: str) -> str:
    return f"{grade_id}.npz"


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (replacing it whole: a reader never sees half a file)."""
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"{key}: only arrays of numbers, booleans or text can be exchanged")
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez(handle, **{key: np.asarray(value) for key, value in arrays.items()})
    os.replace(partial, path)


def read_arrays(path: Path, *, limit: int = MAX_RESULT_BYTES) -> dict[str, np.ndarray]:
    """Read an exchanged file as untrusted data.

    Raises:
        FileNotFoundError: there is no such regular file (a link is not followed).
        ValueError: the file is too large or not a valid ``.npz`` of plain arrays.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise FileNotFoundError(f"{path.name}: no result ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not os.path.stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise FileNotFoundError(f"{path.name}: not a regular file")
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise ValueError(f"{path.name} is larger than {limit // 2**20} MB")
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as loaded:
            return {key: loaded[key] for key in loaded.files}
    except Exception as error:  # noqa: BLE001 - any malformed file is the same refusal
        kind = type(error).__name__
        raise ValueError(f"{path.name} is not a valid result file ({kind})") from None
