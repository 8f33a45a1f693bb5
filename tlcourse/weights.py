"""The SqueezeNet 1.1 ImageNet weights files: where they are, how to read and check them.

Weights travel as torchvision's state_dict: 52 float32 tensors named ``features.0.weight`` ...
``classifier.1.bias``, convolution kernels in PyTorch's OIHW layout. Two file formats hold it:
an ``.npz`` (e.g. ``shared/weights/squeezenet1_1_imagenet.npz``) and torchvision's own ``.pth``,
read without torch by :mod:`tlcourse.torch_checkpoint`. :func:`locate_weights` finds a file,
:func:`load_state_dict` reads and validates it; building the Keras model is ``tlcourse.models``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from tlcourse import architecture, config, hub
from tlcourse.errors import DataFormatError, DataNotFoundError, WeightsError
from tlcourse.torch_checkpoint import read_state_dict

#: The registry entry (``tlcourse.hub.REGISTRY``) of torchvision's weights file.
REMOTE_NAME = "squeezenet1_1-torchvision"
#: File name of the converted weights in the cache folder.
CACHED_NPZ = "squeezenet1_1_imagenet.npz"
#: File suffixes :func:`locate_weights` accepts.
FORMATS = (".npz", ".pth")
#: sha256 of weights files tlcourse knows, for provenance records (a user's .npz has none).
KNOWN_SHA256: dict[str, str] = {
    "ed27ae9b778d70c6d8ab90416697b2dc0bb0d7fbc3573daf18a27c28928d09be": (
        "shared/weights/squeezenet1_1_imagenet.npz (torchvision weights via pnnx/ncnn, fp16)"
    ),
    hub.REGISTRY[REMOTE_NAME].sha256: "torchvision squeezenet1_1-b8a52dc0.pth",
}

WEIGHTS_CARD: dict[str, Any] = {
    "name": "SqueezeNet 1.1, ImageNet-1k (torchvision)",
    "architecture": "torchvision.models.squeezenet1_1",
    "classes": architecture.IMAGENET_CLASSES,
    "parameters": 1_235_496,
    "tensors": 52,
    "layout": (
        "torchvision state_dict names; convolution kernels OIHW "
        "(for Keras Conv2D use w.transpose(2, 3, 1, 0))"
    ),
    "preprocessing": (
        "RGB in [0,1], then (x - mean)/std per channel, mean=IMAGENET_MEAN std=IMAGENET_STD "
        "(imagenet_utils mode='torch'); channels_last"
    ),
    "mean": config.IMAGENET_MEAN,
    "std": config.IMAGENET_STD,
    "source": hub.REGISTRY[REMOTE_NAME].origin,
    "source_sha256": hub.REGISTRY[REMOTE_NAME].sha256,
    "formats": "an .npz in torchvision layout, or torchvision's .pth (zip format)",
    "environment_variable": config.WEIGHTS_ENV,
}


def _offline_hint(url: str) -> str:
    return (
        f"To work offline, set {config.WEIGHTS_ENV} to a SqueezeNet 1.1 weights file, or pass "
        f"its path: an .npz in torchvision layout (such as "
        f"shared/weights/squeezenet1_1_imagenet.npz) or torchvision's .pth from {url}."
    )


def _check_file(path: str | Path, where: str) -> Path:
    """``path`` as a Path, if it is an existing file with an accepted suffix."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise DataFormatError(
            f"{where} must name a weights file ending in {' or '.join(FORMATS)} "
            f"(.npz in torchvision layout, or torchvision's .pth). Received: {path}"
        )
    if not path.is_file():
        raise DataNotFoundError(f"{where} names a weights file that does not exist: {path}")
    return path


def locate_weights(
    path: str | Path | None = None, *, download: bool = True, origin: str | None = None
) -> Path:
    """Find the SqueezeNet 1.1 weights file to use; download and convert it if needed.

    Looks, in order, at ``path``; at ``$TLCOURSE_WEIGHTS``; at the converted file
    ``cache_dir()/squeezenet1_1_imagenet.npz``; then (if ``download``) downloads torchvision's
    ``.pth`` through :func:`tlcourse.hub.fetch` (sha256 checked), converts and validates it
    and writes the ``.npz`` to the cache. A file that fails validation is never cached.

    Args:
        path: an ``.npz`` (torchvision layout) or ``.pth`` file. Defaults to None (search).
        download: whether a download may happen. Defaults to True.
        origin: URL to download torchvision's ``.pth`` from instead of download.pytorch.org.

    Raises:
        DataNotFoundError: no file found (and no download allowed, or the download failed).
        WeightsError: the downloaded file is not SqueezeNet 1.1's state_dict.
    """
    if path is not None:
        return _check_file(path, f"path={str(path)!r}")
    env = os.environ.get(config.WEIGHTS_ENV)
    if env:
        return _check_file(env, f"${config.WEIGHTS_ENV}={env!r}")
    cached = config.cache_dir() / CACHED_NPZ
    if cached.is_file():
        return cached
    url = origin or hub.REGISTRY[REMOTE_NAME].origin
    if not download:
        raise DataNotFoundError(
            f"No SqueezeNet 1.1 weights found: no path given, {config.WEIGHTS_ENV} is not set "
            f"and {cached} does not exist; download=False, so {url} was not tried. "
            + _offline_hint(url)
        )
    return _download_and_convert(cached, origin, url)


def _download_and_convert(cached: Path, origin: str | None, url: str) -> Path:
    """Fetch torchvision's .pth, validate it, write it to ``cached`` as .npz atomically."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{cached}.lock"):
        if cached.is_file():  # another process converted it while we waited
            return cached
        pth = hub.fetch(REMOTE_NAME, origin=origin, cache=cached.parent, hint=_offline_hint(url))
        try:
            state = validate_state_dict(read_state_dict(pth), source=f"{pth} (from {url})")
        except (WeightsError, DataFormatError):
            pth.unlink(missing_ok=True)  # never keep a file that failed validation
            raise
        fd, tmp_name = tempfile.mkstemp(prefix=f".{CACHED_NPZ}.", suffix=".tmp", dir=cached.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **state)
            os.replace(tmp_name, cached)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return cached


def read_weights_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` (no pickles) or a torch ``.pth``; no validation."""
    path = Path(path)
    if path.suffix.lower() == ".pth":
        return read_state_dict(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip; numpy's own error would talk of pickles
        raise DataFormatError(
            f"{path} is not a readable .npz of named arrays (an .npz is a zip file; this one "
            f"starts with {magic!r}). Replace it with SqueezeNet 1.1's weights, or delete it "
            "if it is tlcourse's cached copy so that it is converted again."
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds one unnamed array, not named arrays")
        with loaded as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError, OSError...
        raise DataFormatError(
            f"{path} is not a readable .npz of named arrays ({exc}). Replace it, or delete it "
            "if it is tlcourse's cached copy so that it is converted again."
        ) from exc


def load_state_dict(
    path: str | Path | None = None, *, download: bool = True, origin: str | None = None
) -> dict[str, np.ndarray]:
    """Locate (see :func:`locate_weights`), read and validate the weights: 52 float32 arrays."""
    found = locate_weights(path, download=download, origin=origin)
    return validate_state_dict(read_weights_file(found), source=str(found))


def validate_state_dict(state: dict[str, np.ndarray], *, source: str) -> dict[str, np.ndarray]:
    """Check ``state`` against SqueezeNet 1.1's tensors; return them as float32, in order.

    Raises :class:`~tlcourse.errors.WeightsError` naming ``source`` and every missing, extra,
    misshapen, non-float or non-finite tensor, with the expected and received shapes.
    """
    expected = architecture.torch_tensor_shapes()
    if not isinstance(state, dict):
        raise WeightsError(f"{source}: expected a dict of arrays, received {type(state).__name__}")
    problems = [
        f"missing tensor {k!r} (expected shape {shape})"
        for k, shape in expected.items()
        if k not in state
    ]
    problems += [f"unexpected tensor {k!r}" for k in state if k not in expected]
    for key, shape in expected.items():
        if key not in state:
            continue
        value = np.asarray(state[key])
        if value.shape != shape:
            hwio = (shape[2], shape[3], shape[1], shape[0]) if len(shape) == 4 else None
            note = " (Keras HWIO? torchvision layout is OIHW)" if value.shape == hwio else ""
            problems.append(f"tensor {key!r}: expected shape {shape}, received {value.shape}{note}")
        elif not np.issubdtype(value.dtype, np.floating):
            problems.append(f"tensor {key!r}: expected floating point, received {value.dtype}")
        elif not np.isfinite(value).all():
            bad = int(value.size - np.isfinite(value).sum())
            problems.append(f"tensor {key!r}: {bad} non-finite values (NaN or inf)")
    if problems:
        more = f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
        shown = "; ".join(problems[:8]) + more
        raise WeightsError(
            f"{source} is not SqueezeNet 1.1's ImageNet state_dict in torchvision layout: "
            f"{shown}. Expected the {len(expected)} tensors of "
            "torchvision.models.squeezenet1_1().state_dict() (see "
            "tlcourse.architecture.torch_tensor_shapes())."
        )
    return {key: np.asarray(state[key], dtype=np.float32) for key in expected}


def weights_provenance(path: str | Path) -> dict[str, str]:
    """What a results record should say about a weights file: path, format, sha256, origin."""
    path = Path(path)
    digest = hub.sha256sum(path)
    return {
        "path": str(path),
        "format": path.suffix.lower().lstrip("."),
        "sha256": digest,
        "known_as": KNOWN_SHA256.get(digest, "unpinned (user-provided; structure validated)"),
    }
