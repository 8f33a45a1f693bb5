"""An instructor's nbgrader course directory: created from the repository, opened for grading.

``init_course(DIR)`` writes ``nbgrader_config.py`` (the repository's ``autograder/`` one),
``source/`` (the ``solutions/`` notebooks), the released student versions and the gradebook
(nbgrader's own ``generate_assignment``), ``tlcourse-course.json`` (where data and weights are,
the course's secret seed for the judges' inputs) and, in ``grader/`` (never released, never
visible to a graded kernel), the held-out images and the kernels' view of the data: the
training images only, so that no kernel can read the test set the held-out images come from.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import numpy as np

from tlcourse.config import DATA_ENV, WEIGHTS_ENV
from tlcourse.errors import TLCourseError
from tlcourse.files import write_json_atomic

CONFIG_FILE = "nbgrader_config.py"
SETTINGS_FILE = "tlcourse-course.json"
GRADER_DIR = "grader"
HELDOUT_FILE = "heldout.npz"
#: The data graded kernels see (``grader/kernel-data``): CIFAR-10's training images only.
KERNEL_DATA_DIR = "kernel-data"
#: Held-out images a class, from CIFAR-10's test set (the grader's validation data).
HELDOUT_PER_CLASS = 100
ASSIGNMENTS: tuple[str, ...] = ("01-preprocessing", "02-freezing", "03-finetuning")


class CourseError(TLCourseError):
    """A course directory is missing, incomplete, or an nbgrader step failed."""


def repo_root() -> Path:
    """The checkout holding ``solutions/`` and ``autograder/`` (tlcourse runs from a checkout)."""
    import tlcourse

    root = Path(tlcourse.__file__).resolve().parents[1]
    if not (root / "solutions").is_dir() or not (root / "autograder" / CONFIG_FILE).is_file():
        raise CourseError(
            f"{root} has no solutions/ or autograder/{CONFIG_FILE}: course commands need a "
            "checkout of the tlcourse repository (pip install -e . from it)."
        )
    return root


def check_assignment(name: str) -> str:
    if name not in ASSIGNMENTS:
        raise CourseError(f"Unknown assignment {name!r}. Choose one of: {', '.join(ASSIGNMENTS)}.")
    return name


def check_course(course: str | os.PathLike) -> Path:
    """``course`` as an absolute path, or an error saying how to create it."""
    course = Path(course).resolve()
    if not (course / CONFIG_FILE).is_file() or not (course / SETTINGS_FILE).is_file():
        raise CourseError(
            f"{course} is not a tlcourse course directory (no {CONFIG_FILE} or {SETTINGS_FILE}). "
            f"Create one with: tlcourse course init {course}"
        )
    return course


def nbgrader_config(course: Path):
    """The course's traitlets config, rooted at ``course``.

    Loading the file sets the course's environment (see :func:`course_environment`) for
    nbgrader's own commands; here it is undone, so that only the processes that grade (which
    call :func:`apply_course_environment`) carry it.
    """
    from traitlets.config.loader import PyFileConfigLoader

    cwd, environ = os.getcwd(), dict(os.environ)
    os.chdir(course)  # the config reads tlcourse-course.json beside it
    try:
        config = PyFileConfigLoader(CONFIG_FILE, path=str(course)).load_config()
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
    config.CourseDirectory.root = str(course)
    return config


def read_settings(course: Path) -> dict:
    """``tlcourse-course.json``: where data and weights are, their sha256, the held-out hash."""
    return json.loads((Path(course) / SETTINGS_FILE).read_text())


def course_environment(course: Path) -> dict[str, str]:
    """The variables graded kernels need, as recorded by ``course init`` (absolute paths).

    They win over the instructor's shell: a grade must not depend on where the batch was
    started or what was exported there.
    """
    return dict(read_settings(course).get("environment", {}))


def apply_course_environment(course: Path) -> None:
    """Set the course's environment in this process (a grading process, a pre-flight)."""
    os.environ.update(course_environment(course))


def scripts_on_path() -> None:
    """Put this Python's scripts folder on ``PATH``: nbgrader runs ``alembic`` from there."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [scripts, os.environ.get("PATH")]))


def open_api(course: str | os.PathLike):
    """nbgrader's ``NbGraderAPI`` on ``course`` with the course's configuration."""
    from nbgrader.apps import NbGraderAPI

    scripts_on_path()
    from nbgrader.coursedir import CourseDirectory

    config = nbgrader_config(Path(course))
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def require_success(result: dict, what: str) -> dict:
    """Raise ``CourseError`` with nbgrader's log when an ``NbGraderAPI`` call failed."""
    if not result.get("success"):
        raise CourseError(f"{what} failed:\n{result.get('error') or ''}\n{result.get('log') or ''}")
    return result


def generate(course: Path, assignments=ASSIGNMENTS) -> None:
    """Run nbgrader's ``generate_assignment`` in ``course`` for each assignment."""
    api = open_api(course)
    for name in assignments:
        require_success(api.generate_assignment(name), f"nbgrader generate_assignment {name}")


def heldout_indices(train, test, seed: int) -> np.ndarray:
    """Test images no notebook can load or has seen, ``HELDOUT_PER_CLASS`` a class (sorted).

    Graded kernels see only the training images (:func:`write_kernel_data`), so the held-out
    images come from the test set, minus any test image that is a training image pixel for
    pixel and minus the library's own test subsets (``take_per_class(test, n, seed=0)``, which
    the book and ``tlcourse reproduce`` use and a student may have tuned on at home). They are
    drawn with the course's secret seed.
    """
    import hashlib

    from tlcourse.pipeline import take_per_class

    digest = lambda image: hashlib.sha256(image.tobytes()).digest()  # noqa: E731
    seen = {digest(image) for image in train.images}
    usable = np.array([digest(image) not in seen for image in test.images], dtype=bool)
    usable[take_per_class(test.labels, HELDOUT_PER_CLASS, seed=0)] = False
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(test.labels):
        members = np.flatnonzero(usable & (test.labels == label))
        if len(members) < HELDOUT_PER_CLASS:
            raise CourseError(
                f"The data's test set has only {len(members)} images of class {label} that "
                f"no notebook can see; the grader holds out {HELDOUT_PER_CLASS} a class."
            )
        chosen.append(rng.choice(members, HELDOUT_PER_CLASS, replace=False))
    return np.sort(np.concatenate(chosen))


def write_heldout(path: Path, data=None, seed: int = 0) -> Path:
    """The grader's held-out images (uint8, labels): :func:`heldout_indices` of ``data``."""
    from tlcourse.data import load_cifar10

    train, test = load_cifar10(data, download=False)
    held = test.subset(heldout_indices(train, test, seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=held.images, labels=held.labels)
    return path


def write_kernel_data(folder: Path, data=None) -> Path:
    """The graded kernels' data: the training images in the python layout, an empty test set.

    The held-out images are drawn from CIFAR-10's test set; a kernel that could read it could
    rebuild them, so the test set never reaches a kernel (the notebooks use only ``train``).
    """
    from tlcourse.cifar10_python import write_cifar10_python
    from tlcourse.data import load_cifar10
    from tlcourse.imageset import ImageSet

    train, test = load_cifar10(data, download=False)
    empty = ImageSet(test.images[:0], test.labels[:0], test.class_names)
    return write_cifar10_python(folder, train, empty)


def kernel_environment(course: Path) -> dict[str, str]:
    """Where a graded kernel of ``course`` finds its data and weights (absolute paths).

    The data is the course's own view (inside the course, recorded relative to it, so that a
    copied or moved course uses its own); a course made before it had one gives ``{}``.
    """
    recorded = read_settings(course).get("kernel_environment", {})
    return {name: str((Path(course) / path).resolve()) for name, path in recorded.items()}


def init_course(course: str | os.PathLike, *, data=None, weights=None, force: bool = False) -> Path:
    """Create a course directory: config, ``source/``, release and gradebook, held-out data.

    Data and weights are resolved to absolute paths (a relative ``$TLCOURSE_DATA`` means the
    folder ``course init`` ran in, not the one a kernel runs in) and checked: the weights are
    read and validated, the data's test set is read for the held-out images.
    """
    from tlcourse.data import locate_cifar10
    from tlcourse.provenance import sha256_of
    from tlcourse.weights import locate_weights, read_weights_file, validate_state_dict

    root = repo_root()
    course = Path(course).resolve()
    if (course / CONFIG_FILE).exists() and not force:
        raise CourseError(f"{course} already holds a course; pass --force to recreate its files.")
    data_path = Path(locate_cifar10(data)).resolve()
    weights_path = Path(locate_weights(weights)).resolve()
    for what, path in (("data", data_path), ("weights", weights_path)):
        if path.is_relative_to(course):
            raise CourseError(
                f"The {what} ({path}) lie inside the course directory, which students' kernels "
                f"cannot see (it holds the solutions and the held-out data). Keep the {what} "
                "outside it and pass that path."
            )
    validate_state_dict(read_weights_file(weights_path), source=str(weights_path))
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "autograder" / CONFIG_FILE, course / CONFIG_FILE)
    for name in ASSIGNMENTS:
        shutil.copytree(root / "solutions" / name, course / "source" / name, dirs_exist_ok=True)
    judge_seed = secrets.randbelow(2**31)
    heldout = write_heldout(course / GRADER_DIR / HELDOUT_FILE, data_path, judge_seed)
    kernel_data = write_kernel_data(course / GRADER_DIR / KERNEL_DATA_DIR, data_path)
    settings = {
        "environment": {DATA_ENV: str(data_path), WEIGHTS_ENV: str(weights_path)},
        "kernel_environment": {
            DATA_ENV: str(kernel_data.relative_to(course)),
            WEIGHTS_ENV: str(weights_path),
        },
        "judge_seed": judge_seed,
        "data_sha256": sha256_of(data_path),
        "weights_sha256": sha256_of(weights_path),
        "heldout_sha256": sha256_of(heldout),
        "kernel_data_sha256": sha256_of(kernel_data),
    }
    write_json_atomic(course / SETTINGS_FILE, settings)
    generate(course)
    return course
