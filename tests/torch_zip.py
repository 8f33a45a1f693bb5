"""Write a ``torch.save``-style zip ``.pth`` from numpy arrays, in pure Python (tests only).

The pickle uses the opcodes torch itself emits (protocol 2; see tests/fixtures/tiny_state_dict.pth
written by real torch): an ``OrderedDict`` built with GLOBAL/REDUCE and filled with SETITEMS,
each tensor a REDUCE of ``torch._utils _rebuild_tensor_v2`` over ``(storage, offset, size,
stride, False, OrderedDict())``, each storage a BINPERSID of ``("storage", torch.<T>Storage,
key, "cpu", numel)`` whose bytes lie in ``<prefix>/data/<key>``. Every array gets its own
contiguous storage. Used to build a full-size SqueezeNet ``.pth`` at test time.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

STORAGE_TYPES: dict[str, str] = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


def op_global(module: str, name: str) -> bytes:
    """GLOBAL: push ``module.name`` (resolved by the unpickler's ``find_class``)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def op_str(text: str) -> bytes:
    """BINUNICODE."""
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    """The smallest of BININT1, BININT2, BININT or LONG1, as pickle protocol 2 does."""
    if 0 <= value < 2**8:
        return b"K" + struct.pack("<B", value)
    if 0 <= value < 2**16:
        return b"M" + struct.pack("<H", value)
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + struct.pack("<B", len(data)) + data


def op_tuple(items: list[bytes]) -> bytes:
    """EMPTY_TUPLE, TUPLE1..3 or MARK ... TUPLE, as pickle protocol 2 does."""
    short = {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}
    if len(items) in short:
        return b"".join(items) + short[len(items)]
    return b"(" + b"".join(items) + b"t"


def empty_ordered_dict() -> bytes:
    return op_global("collections", "OrderedDict") + b")R"


def tensor_pickle(key: str, storage_type: str, numel: int, shape: tuple[int, ...]) -> bytes:
    """``_rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict())``."""
    strides = [int(np.prod(shape[i + 1 :], dtype=np.int64)) for i in range(len(shape))]
    kind = op_global("torch", storage_type)
    pid = [op_str("storage"), kind, op_str(key), op_str("cpu"), op_int(numel)]
    storage = b"(" + b"".join(pid) + b"tQ"  # MARK ... TUPLE, BINPERSID
    args = [
        storage,
        op_int(0),  # storage offset
        op_tuple([op_int(n) for n in shape]),
        op_tuple([op_int(s) for s in strides]),
        b"\x89",  # NEWFALSE: requires_grad
        empty_ordered_dict(),  # backward_hooks
    ]
    return op_global("torch._utils", "_rebuild_tensor_v2") + b"(" + b"".join(args) + b"tR"


def state_dict_pickle(entries: list[tuple[str, bytes]]) -> bytes:
    """An OrderedDict of ``name -> pickled value`` (protocol 2, SETITEMS), then STOP."""
    body = b"".join(op_str(name) + value for name, value in entries)
    return b"\x80\x02" + empty_ordered_dict() + b"(" + body + b"u."


def write_archive(
    path: Path,
    data_pkl: bytes,
    storages: Mapping[str, bytes],
    *,
    prefix: str | None = None,
    byteorder: str = "little",
) -> Path:
    """Write the zip layout of ``torch.save``: data.pkl, byteorder, data/<key>, version."""
    prefix = Path(path).stem if prefix is None else prefix
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", data_pkl)
        archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            archive.writestr(f"{prefix}/data/{key}", raw)
        archive.writestr(f"{prefix}/version", "3\n")
    return Path(path)


def write_torch_zip(
    path: Path, tensors: Mapping[str, np.ndarray], *, byteorder: str = "little"
) -> Path:
    """Write ``tensors`` as a torch.save'd state_dict that ``torch.load`` would also read."""
    entries, storages = [], {}
    order = "<" if byteorder == "little" else ">"
    for index, (name, value) in enumerate(tensors.items()):
        array = np.array(value, order="C")  # (not ascontiguousarray: it makes 0-d arrays 1-d)
        key = str(index)
        storage_type = STORAGE_TYPES[array.dtype.name]
        storages[key] = array.astype(array.dtype.newbyteorder(order)).tobytes()
        entries.append((name, tensor_pickle(key, storage_type, array.size, array.shape)))
    return write_archive(path, state_dict_pickle(entries), storages, byteorder=byteorder)
