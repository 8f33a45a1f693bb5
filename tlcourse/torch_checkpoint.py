"""Read a PyTorch ``.pth`` state_dict into numpy arrays, without torch and without running code.

``torch.save`` (since PyTorch 1.6) writes a zip archive::

    <prefix>/data.pkl       a protocol-2 pickle of the object (here an OrderedDict of tensors)
    <prefix>/data/<key>     the raw bytes of each storage, named by its key
    <prefix>/byteorder      "little" or "big" (absent in older files: little)
    <prefix>/version        the format version

The pickle rebuilds each tensor with ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` and names each storage with a persistent id ``("storage", torch.FloatStorage,
key, location, numel)``. Unpickling runs whatever callables the file names, so this module uses
a restricted unpickler: it maps the handful of names a state_dict needs onto local functions and
refuses every other name with :class:`~tlcourse.errors.DataFormatError`.
"""

from __future__ import annotations

import collections
import functools
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlcourse.errors import DataFormatError

#: ``torch.<Name>Storage`` -> the numpy dtype of its elements. ``BFloat16Storage`` is read as
#: raw 16-bit words and widened to float32 (numpy has no bfloat16).
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexDoubleStorage": "c16",
    "ComplexFloatStorage": "c8",
    "UntypedStorage": "u1",
}

# A sanity bound: a stride-0 view could otherwise ask for terabytes.
_MAX_ELEMENTS = 2**31

# Torch pickles the legacy (pre-1.6) format with this magic number first.
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[2:]


@dataclass(frozen=True)
class _StorageType:
    """Stands in for a ``torch.*Storage`` class named in the pickle."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _Storage:
    """One storage's elements as a flat numpy array, plus the storage type it came from."""

    kind: _StorageType
    data: np.ndarray


def _rebuild_tensor(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> np.ndarray:
    """Copy the view ``(offset, size, stride)`` of ``storage`` into a new C-contiguous array."""
    if not isinstance(storage, _Storage):
        raise DataFormatError(f"a tensor's storage is a {type(storage).__name__}, not a storage")
    offset = int(offset)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in (*size, *stride)):
        raise DataFormatError(f"invalid tensor view: offset={offset} size={size} stride={stride}")
    if math.prod(size) > _MAX_ELEMENTS:
        raise DataFormatError(f"a tensor of size {size} is larger than any SqueezeNet weight")
    flat = storage.data
    if 0 not in size:
        last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True))
        if last >= flat.size:
            raise DataFormatError(
                f"a tensor view (offset={offset} size={size} stride={stride}) reaches element "
                f"{last} of a storage holding {flat.size}"
            )
    base = flat[offset:] if 0 not in size else flat[:0]
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        base, shape=size, strides=tuple(st * item for st in stride), writeable=False
    )
    array = np.array(view, copy=True, order="C")
    if storage.kind.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_tensor_v2(
    storage: _Storage,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2``: the autograd arguments are ignored."""
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(
    data: np.ndarray, requires_grad: bool = False, backward_hooks: Any = None
) -> np.ndarray:
    """``torch._utils._rebuild_parameter`` (``state_dict(keep_vars=True)``): the data only."""
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that knows a few torch names and reads storages from the zip."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, byteorder: str, source: str):
        super().__init__(archive.open(f"{prefix}data.pkl"), encoding="utf-8")
        self._archive = archive
        self._prefix = prefix
        self._byteorder = "<" if byteorder == "little" else ">"
        self._source = source
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            allowed = _ALLOWED[(module, name)]
        except KeyError:
            raise DataFormatError(
                f"{self._source}: refusing to load: the pickle references {module}.{name}, "
                "which a plain state_dict of tensors never needs (loading it could run code). "
                "Only load .pth files you trust with torch; tlcourse reads tensors only."
            ) from None
        if callable(allowed) and not isinstance(allowed, type):
            # A fresh wrapper each time, so a BUILD opcode cannot change our functions.
            return functools.partial(allowed)
        return allowed

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise DataFormatError(f"{self._source}: unknown persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType):
            raise DataFormatError(f"{self._source}: storage {key!r} has no known storage type")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = self._read_storage(kind, key, int(numel))
        return self._storages[key]

    def _read_storage(self, kind: _StorageType, key: str, numel: int) -> _Storage:
        member = f"{self._prefix}data/{key}"
        try:
            raw = self._archive.read(member)
        except KeyError:
            raise DataFormatError(f"{self._source}: storage {member} is missing") from None
        dtype = kind.dtype.newbyteorder(self._byteorder)
        if len(raw) < numel * dtype.itemsize:
            raise DataFormatError(
                f"{self._source}: storage {member} holds {len(raw)} bytes, "
                f"expected {numel} x {dtype.itemsize}"
            )
        data = np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))
        return _Storage(kind, data)


def _find_prefix(archive: zipfile.ZipFile, source: str) -> str:
    """The folder holding ``data.pkl`` (torch names it after the file, or ``archive``)."""
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise DataFormatError(
            f"{source} is a zip file but not a torch.save archive: expected one "
            f"'<prefix>/data.pkl', found {pickles or 'none'}"
        )
    return pickles[0][: -len("data.pkl")]


def _refuse_non_zip(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(32)
    if head[2:].startswith(_LEGACY_MAGIC) or head[257:262] == b"ustar":
        raise DataFormatError(
            f"{path} is a PyTorch checkpoint in the legacy (before PyTorch 1.6) format, which "
            "tlcourse does not read. Re-save it with a recent torch: "
            "torch.save(torch.load(p, weights_only=True), 'new.pth'), or convert it to .npz."
        )
    raise DataFormatError(
        f"{path} is not a PyTorch .pth file: expected the zip archive torch.save writes "
        f"(received a file starting {head[:8]!r})."
    )


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read the tensors of a ``torch.save``-d state_dict as ``{name: numpy array}``.

    Never imports torch and never runs code from the file: a pickle that names anything but
    tensors, storages and ``OrderedDict`` raises :class:`~tlcourse.errors.DataFormatError`.
    Arrays are C-contiguous copies with torch's dtype (bfloat16 widened to float32).
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        _refuse_non_zip(path)
    source = str(path)
    with zipfile.ZipFile(path) as archive:
        prefix = _find_prefix(archive, source)
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii").strip()
            if byteorder not in ("little", "big"):
                raise DataFormatError(f"{source}: unknown byteorder {byteorder!r}")
        unpickler = _RestrictedUnpickler(archive, prefix, byteorder, source)
        try:
            obj = unpickler.load()
        except DataFormatError:
            raise
        except Exception as exc:
            raise DataFormatError(f"{source}: the pickle in data.pkl is damaged: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataFormatError(
            f"{source} holds a {type(obj).__name__}, not a state_dict (a dict of tensors)"
        )
    state: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, np.ndarray):
            raise DataFormatError(
                f"{source}: entry {key!r} holds a {type(value).__name__}, not a tensor; "
                "expected a flat state_dict such as model.state_dict()"
            )
        state[key] = value
    return state
