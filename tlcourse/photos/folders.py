"""A folder of one's own photos: which files, which classes, which split, all checked first.

:func:`open_folder` takes ``<root>/<split>/<class>/<image>`` (splits ``train/`` plus ``val/``,
``validation/`` or ``test/``), or ``<root>/<class>/<image>`` with a validation share split off,
as a folder or an archive of one (extracted once into the cache). It checks everything a run
needs before any training starts: at least two classes, the same classes in every split, no
empty class, and every image decodable by the decoder training will use. Files that are not
images, and images that do not decode, are skipped and listed, never silently.

Why not ``keras.utils.image_dataset_from_directory``: it takes a folder, not a list of files, so
one corrupt JPEG would stop training mid-epoch instead of being skipped here, and its
``validation_split`` is not stratified. The decoding itself is the same (``tf.io.decode_image``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock

from tlcourse.archives import is_archive, member_parts, open_archive
from tlcourse.config import cache_dir
from tlcourse.errors import DataFormatError, DataNotFoundError

#: Image formats read (compared in lower case): what ``tf.io.decode_image`` decodes.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
#: Names of the validation folder beside ``train/``, in the order they are looked for.
VALIDATION_NAMES: tuple[str, ...] = ("val", "validation", "valid")
TRAIN_NAME = "train"
TEST_NAME = "test"
#: Share of each class held out for validation when the folder has no validation split.
DEFAULT_VALIDATION_SPLIT = 0.2


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """Image files with their integer labels and the class names the labels index."""

    paths: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        found = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found, strict=True)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageFiles:
        indices = np.asarray(indices, dtype=np.int64)
        return ImageFiles(
            tuple(self.paths[i] for i in indices), self.labels[indices], self.class_names
        )

    def fingerprint(self) -> str:
        """sha256 over every file's path, size and modification time: changes when a file does."""
        digest = hashlib.sha256()
        for path, label in zip(self.paths, self.labels.tolist(), strict=True):
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{label}\n".encode())
        return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class PhotoFolder:
    """A checked image folder: its splits, its classes, and what was skipped and why.

    Attributes:
        root: the folder the splits were read from (an archive's extracted copy).
        source: what the user gave (a folder or an archive).
        class_names: sorted class-folder names; label ``i`` is ``class_names[i]``.
        train, val: the training images and the images that choose the best epoch.
        test: images used once, at the end (a ``test/`` folder beside ``train/`` and ``val/``).
        validation: how ``val`` was made, in words (a folder, or a seeded stratified split).
        skipped: ``(path, reason)`` of every file that is not used.
    """

    root: Path
    source: Path
    class_names: tuple[str, ...]
    train: ImageFiles
    val: ImageFiles
    test: ImageFiles | None
    validation: str
    skipped: tuple[tuple[str, str], ...] = field(default=())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> dict[str, ImageFiles]:
        found = {"train": self.train, "val": self.val}
        if self.test is not None:
            found["test"] = self.test
        return found

    def describe(self) -> list[str]:
        """Lines a user reads before training: classes, sizes, how validation is chosen, skips."""
        sizes = ", ".join(f"{name} {len(files):,}" for name, files in self.splits().items())
        lines = [
            f"{self.source}: {self.num_classes} classes ({', '.join(self.class_names)}); "
            f"images: {sizes}",
            f"validation: {self.validation}",
        ]
        smallest = min(self.train.counts().items(), key=lambda item: item[1])
        lines.append(f"smallest class in train: {smallest[0]} ({smallest[1]} images)")
        lines += skipped_lines(self.skipped)
        return lines


def skipped_lines(skipped: Sequence[tuple[str, str]], shown: int = 5) -> list[str]:
    """One line per reason a file was skipped, naming the first few files."""
    by_reason: dict[str, list[str]] = {}
    for path, reason in skipped:
        by_reason.setdefault(reason, []).append(path)
    lines = []
    for reason, paths in by_reason.items():
        more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
        lines.append(f"skipped {len(paths)} file(s), {reason}: {', '.join(paths[:shown])}{more}")
    return lines


# --------------------------------------------------------------------------------------------
# Archives: extracted once into the cache (tf.data streams files from disk)
# --------------------------------------------------------------------------------------------


def extracted(archive: Path) -> Path:
    """The folder ``archive`` was extracted to in the cache; extracted now if it was not.

    Keyed by the archive's sha256, written to a temporary folder and renamed when complete (an
    interrupted extraction leaves nothing half-done), locked against a parallel run. Members with
    absolute names or ``..`` get the archive refused; links and devices are not extracted.
    """
    from tlcourse.hub import sha256sum

    digest = sha256sum(archive)[:16]
    target = cache_dir() / "extracted" / f"{archive.name}-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if target.is_dir():
            return target
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        with open_archive(archive) as handle:
            if isinstance(handle, zipfile.ZipFile):
                infos = [i for i in handle.infolist() if member_parts(archive, i.filename)]
                handle.extractall(staging, members=infos)
            else:
                kept = [
                    m
                    for m in handle.getmembers()
                    if member_parts(archive, m.name) and (m.isfile() or m.isdir())
                ]
                handle.extractall(staging, members=kept, filter="data")
        os.replace(staging, target)
    return target


# --------------------------------------------------------------------------------------------
# Finding the splits and the files
# --------------------------------------------------------------------------------------------


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX")))


def _class_folders(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in _visible(folder) if p.is_dir()}


def _files_under(folder: Path) -> list[Path]:
    """Every visible file under ``folder``, in sub-folders too, sorted by path."""
    found = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(top, n) for n in names if not n.startswith(".")]
    return sorted(found)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _split_root(root: Path) -> Path:
    """``root``, or the one folder it holds when everything is under one top folder."""
    entries = _visible(root)
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        names = set(_class_folders(inner))
        if TRAIN_NAME in names or _holds_images(inner):
            return inner
    return root


def _holds_images(folder: Path) -> bool:
    return any(
        _is_image(f) for sub in _class_folders(folder).values() for f in _files_under(sub)[:50]
    )


def _read_split(
    folder: Path, class_names: tuple[str, ...], split: str, skipped: list
) -> ImageFiles:
    found = _class_folders(folder)
    missing = [c for c in class_names if c not in found]
    extra = [c for c in found if c not in class_names]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"has no folder for {', '.join(missing)}")
        if extra:
            problems.append(f"has folders for classes that train/ lacks: {', '.join(extra)}")
        raise DataFormatError(
            f"{folder} {' and '.join(problems)}. Every split needs one folder per class, the "
            f"same classes as {TRAIN_NAME}/ ({', '.join(class_names)}): add or remove folders "
            "so that they match."
        )
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        files = _files_under(found[name])
        images = [f for f in files if _is_image(f)]
        skipped += [
            (str(f), f"not an image ({', '.join(IMAGE_SUFFIXES)} are read)")
            for f in files
            if not _is_image(f)
        ]
        if not images:
            raise DataFormatError(
                f"Class {name!r} has no images in {split} ({found[name]} holds "
                f"{len(files)} file(s), none ending in {', '.join(IMAGE_SUFFIXES)}). Add images "
                "to it, or remove that class's folder from every split."
            )
        paths += [str(f) for f in images]
        labels += [label] * len(images)
    return ImageFiles(tuple(paths), np.asarray(labels, dtype=np.int64), class_names)


def _check_classes(class_names: Sequence[str], where: Path) -> tuple[str, ...]:
    if len(class_names) < 2:
        found = f"only {class_names[0]!r}" if class_names else "none"
        raise DataFormatError(
            f"{where} has {found} as class folder(s); a classifier needs at least 2 classes, "
            "one folder of images each (e.g. train/cats/*.jpg and train/dogs/*.jpg)."
        )
    return tuple(class_names)


def _split_off(
    files: ImageFiles, validation_split: float, seed: int
) -> tuple[ImageFiles, ImageFiles]:
    from tlcourse.pipeline import stratified_split

    counts = files.counts()
    small = [f"{name} ({n})" for name, n in counts.items() if n < 2]
    if small:
        raise DataFormatError(
            f"Cannot hold out a validation share: the class(es) {', '.join(small)} have fewer "
            "than 2 images. Add images, or give a val/ folder beside train/."
        )
    try:
        train_idx, val_idx = stratified_split(files.labels, validation_split, seed=seed)
    except ValueError as err:
        raise DataFormatError(
            f"Cannot hold out {validation_split:g} of {len(files)} images for validation: "
            f"{err} Choose another --validation-split, or give a val/ folder."
        ) from err
    return files.subset(train_idx), files.subset(val_idx)


def find_files(
    root: Path, *, validation_split: float | None, seed: int
) -> tuple[ImageFiles, ImageFiles, ImageFiles | None, str, list[tuple[str, str]]]:
    """The train, validation and test files of an extracted folder, unchecked pixels."""
    root = _split_root(root)
    folders = _class_folders(root)
    skipped: list[tuple[str, str]] = []
    if TRAIN_NAME in folders:
        train_dir = folders[TRAIN_NAME]
        class_names = _check_classes(sorted(_class_folders(train_dir)), train_dir)
        train = _read_split(train_dir, class_names, f"{TRAIN_NAME}/", skipped)
        val_name = next((n for n in VALIDATION_NAMES if n in folders), None)
        test = None
        if TEST_NAME in folders:
            test = _read_split(folders[TEST_NAME], class_names, f"{TEST_NAME}/", skipped)
        if validation_split is not None:
            if val_name is not None:
                raise DataFormatError(
                    f"{root} has a {val_name}/ folder, so --validation-split "
                    f"{validation_split:g} would leave it unused. Drop --validation-split to "
                    f"validate on {val_name}/, or remove {val_name}/."
                )
            train, val = _split_off(train, validation_split, seed)
            how = f"{validation_split:.0%} of each class of train/, held out (seed {seed})"
        elif val_name is not None:
            val = _read_split(folders[val_name], class_names, f"{val_name}/", skipped)
            how = f"the {val_name}/ folder"
        elif test is not None:
            val, test = test, None
            how = (
                "the test/ folder (there is no val/): it chooses the best epoch, so its "
                "accuracy is optimistic; give --validation-split to keep test/ for the end"
            )
        else:
            share = DEFAULT_VALIDATION_SPLIT
            train, val = _split_off(train, share, seed)
            how = f"{share:.0%} of each class of train/, held out (seed {seed})"
        return train, val, test, how, skipped
    splits_named = [n for n in (*VALIDATION_NAMES, TEST_NAME) if n in folders]
    if splits_named:
        raise DataFormatError(
            f"{root} has {', '.join(s + '/' for s in splits_named)} but no train/ folder. "
            "Expected train/<class>/<image> beside it, or one folder per class directly."
        )
    class_names = _check_classes(list(folders), root)
    everything = _read_split(root, class_names, "the folder", skipped)
    share = DEFAULT_VALIDATION_SPLIT if validation_split is None else validation_split
    train, val = _split_off(everything, share, seed)
    how = f"{share:.0%} of each class, held out (seed {seed}); the rest trains"
    return train, val, None, how, skipped


# --------------------------------------------------------------------------------------------
# Checking every image with the decoder training uses
# --------------------------------------------------------------------------------------------


def undecodable(paths: Sequence[str]) -> dict[str, str]:
    """The files among ``paths`` that ``tf.io.decode_image`` cannot decode, with the reason.

    Decodes every file once, in parallel, with the decoder the training pipeline uses; results
    are remembered in the cache by path, size and modification time, so a rerun checks only
    files that changed.
    """
    memo_path = cache_dir() / "checked-images.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}

    def key(path: str) -> str:
        stat = os.stat(path)
        return f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}"

    keys = {path: key(path) for path in paths}
    unknown = [p for p in paths if keys[p] not in memo]
    if unknown:
        import tensorflow as tf

        from tlcourse.photos.pipeline import decode

        good = tf.data.Dataset.from_tensor_slices(list(unknown)).map(
            lambda p: (p, tf.shape(decode(p))), num_parallel_calls=tf.data.AUTOTUNE
        )
        good = good.ignore_errors()
        decoded = {p.decode(): shape for p, shape in good.as_numpy_iterator()}
        for path in unknown:
            shape = decoded.get(path)
            if shape is None:
                memo[keys[path]] = "could not be decoded as an image (corrupt or truncated)"
            elif min(shape[:2]) < 1:
                memo[keys[path]] = "holds no pixels"
            else:
                memo[keys[path]] = ""
        from tlcourse.files import write_json_atomic

        write_json_atomic(memo_path, memo)
    return {p: memo[keys[p]] for p in paths if memo[keys[p]]}


def open_folder(
    root: str | os.PathLike,
    *,
    validation_split: float | None = None,
    seed: int = 0,
    check_images: bool = True,
) -> PhotoFolder:
    """Find and check a folder of photos for training.

    Args:
        root: ``train/<class>/*`` with ``val/`` (or ``validation/``, ``valid/``) and maybe
            ``test/`` beside it; or ``<class>/*`` directly; or a ``.tar*``/``.zip`` of either,
            maybe under one top folder (extracted once into the cache).
        validation_split: share of each class of ``train/`` to validate on, when there is no
            validation folder. Defaults to None: the validation folder if there is one, else
            ``test/``, else 0.2.
        seed: seed of a validation split. Defaults to 0.
        check_images: decode every image once and skip those that fail. Defaults to True.

    Raises:
        DataNotFoundError: ``root`` does not exist.
        DataFormatError: fewer than 2 classes, classes that differ between splits, an empty
            class, or a layout that is none of the above; the message says what to change.
    """
    source = Path(root).expanduser()
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(
            "`validation_split` must lie strictly between 0 and 1, e.g. 0.2. "
            f"Received: validation_split={validation_split!r}"
        )
    if not source.exists():
        raise DataNotFoundError(
            f"{source} does not exist. Give a folder of photos: train/<class>/<image> (with "
            "val/<class>/<image> beside it), or one folder per class, or an archive of either."
        )
    if source.is_file():
        if not is_archive(source):
            raise DataFormatError(
                f"{source} is a file, not a folder of photos nor an archive (.tar, .tar.gz, "
                ".zip...). Give the folder that holds train/ (or one folder per class)."
            )
        folder = extracted(source)
    else:
        folder = source
    train, val, test, how, skipped = find_files(
        folder, validation_split=validation_split, seed=seed
    )
    if check_images:
        every = [p for files in (train, val, test) if files is not None for p in files.paths]
        bad = undecodable(every)
        if bad:
            skipped += [(path, reason) for path, reason in bad.items()]
            train, val, test = (
                _without(files, bad, name)
                for files, name in ((train, "train"), (val, "validation"), (test, "test"))
            )
    return PhotoFolder(folder, source, train.class_names, train, val, test, how, tuple(skipped))


def _without(files: ImageFiles | None, bad: dict[str, str], split: str) -> ImageFiles | None:
    if files is None:
        return None
    keep = [i for i, p in enumerate(files.paths) if p not in bad]
    kept = files.subset(keep)
    left = Counter(kept.labels.tolist())
    empty = [n for i, n in enumerate(files.class_names) if not left.get(i)]
    if empty:
        raise DataFormatError(
            f"Class(es) {', '.join(empty)} have no readable image left in the {split} images "
            f"(every one failed to decode, e.g. {next(p for p in files.paths if p in bad)}). "
            "Replace those files with readable JPEG, PNG, GIF, BMP or WebP images."
        )
    return kept
