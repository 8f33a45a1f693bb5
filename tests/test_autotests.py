"""The grader's judges on real answers, in one process (no kernel, no nbgrader): the reference
solutions pass every test, result files are read as untrusted data, the held-out images are
out of every kernel's reach, the accuracy lines fit the calibration. (Every corpus case is
graded through nbgrader in ``test_grading_class``, which asserts its points and diagnoses.)"""

from __future__ import annotations

import os

import nbformat
import numpy as np
import pytest
from grading_fixtures import PROJECT_ROOT

from tlcourse.grading.autotests import JudgeContext, registry
from tlcourse.grading.kernel.exchange import ERROR_KEY, read_arrays, write_arrays
from tlcourse.grading.preprocessors.verdicts import verdict
from tlcourse.grading.student.budget import current_budget

IN_PROCESS = ("01-preprocessing", "02-freezing")  # assignment 3 trains: graded in test_grading_*


def _notebook(assignment: str):
    return nbformat.read(PROJECT_ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)


def _verdicts(assignment: str, context: JudgeContext, tmp_path) -> dict:
    """Run the notebook's cells here, each judged test's probe after its cell, then judge."""
    tests = registry()[assignment].tests
    inputs = registry()[assignment].inputs(context)
    namespace: dict = {}
    found = {}
    for cell in _notebook(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("grade") and not meta.get("solution"):
            test = tests[meta["grade_id"]]
            try:
                results = test.probe(namespace, inputs)
            except AssertionError as error:
                results = {ERROR_KEY: str(error)}
            file = tmp_path / f"{meta['grade_id']}.npz"
            write_arrays(file, results)
            found[meta["grade_id"]] = verdict(test, file, inputs, context)
        else:
            exec(cell.source, namespace)
    return found


@pytest.fixture(scope="module")
def context(cifar10_root, weights_npz):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TLCOURSE_DATA", str(cifar10_root / "cifar-10-batches-py"))
        env.setenv("TLCOURSE_WEIGHTS", str(weights_npz))
        yield JudgeContext(cifar10_root, weights_npz, current_budget(), seed=11)


@pytest.mark.parametrize("assignment", IN_PROCESS)
def test_the_reference_solution_passes_every_judge(assignment, context, tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_DATA", str(context.data))
    monkeypatch.setenv("TLCOURSE_WEIGHTS", str(context.weights))
    found = _verdicts(assignment, context, tmp_path)
    assert set(found) == set(registry()[assignment].tests)
    assert all(failure is None for failure in found.values()), found


def test_inputs_depend_on_the_course_seed(context):
    other = JudgeContext(context.data, context.weights, context.budget, seed=12)
    first = registry()["01-preprocessing"].inputs(context)
    second = registry()["01-preprocessing"].inputs(other)
    assert not np.array_equal(first["images"], second["images"])
    assert np.array_equal(first["images"], registry()["01-preprocessing"].inputs(context)["images"])


def test_result_files_are_read_as_untrusted_data(tmp_path, context):
    test = registry()["01-preprocessing"].tests["test_to_unit"]
    inputs = registry()["01-preprocessing"].inputs(context)
    outside = tmp_path / "outside.npz"
    write_arrays(outside, {"images": inputs["images"] / 255.0})
    link = tmp_path / "link.npz"
    link.symlink_to(outside)
    assert "did not finish" in verdict(test, link, inputs, context).message  # a link: not followed
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, images=np.array([object()], dtype=object))
    assert "could not be read" in verdict(test, pickled, inputs, context).message
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(os.urandom(1000))
    assert "could not be read" in verdict(test, garbage, inputs, context).message
    missing_key = tmp_path / "missing.npz"
    write_arrays(missing_key, {"other": np.zeros(3)})
    assert "found no 'images'" in verdict(test, missing_key, inputs, context).message
    wrong_type = tmp_path / "text.npz"
    write_arrays(wrong_type, {"images": np.array(["a"]), "extremes": np.array(["b"])})
    assert verdict(test, wrong_type, inputs, context)  # text where numbers belong: a failure
    with pytest.raises(ValueError, match="larger"):
        read_arrays(outside, limit=100)


def test_graded_kernels_see_the_training_images_and_an_empty_test_set(cifar10_root, tmp_path):
    from tlcourse.data import load_cifar10
    from tlcourse.grading.grade.course import write_kernel_data

    view = write_kernel_data(tmp_path / "kernel-data", cifar10_root / "cifar-10-batches-py")
    train, test = load_cifar10(view, download=False)
    full_train, full_test = load_cifar10(cifar10_root / "cifar-10-batches-py", download=False)
    assert len(test) == 0 and len(full_test) == 10_000
    assert np.array_equal(train.images, full_train.images)
    assert np.array_equal(train.labels, full_train.labels)


def test_the_held_out_images_are_none_a_notebook_can_load_under_any_budget(cifar10_root, tmp_path):
    """Every image a graded kernel can read (its data view, whatever the budget takes from it)
    and the library's own test subsets are disjoint from the grader's held-out images."""
    import hashlib

    from tlcourse.data import load_cifar10
    from tlcourse.grading.grade.course import write_heldout, write_kernel_data
    from tlcourse.pipeline import take_per_class

    source = cifar10_root / "cifar-10-batches-py"
    view = write_kernel_data(tmp_path / "kernel-data", source)
    digests = lambda images: {hashlib.sha256(x.tobytes()).digest() for x in images}  # noqa: E731
    reachable = set()
    for split in load_cifar10(view, download=False):  # the full budget: everything in the view
        reachable |= digests(split.images)
    _, test = load_cifar10(source, download=False)
    reachable |= digests(test.images[take_per_class(test.labels, 100, seed=0)])
    heldouts = []
    for seed in (0, 7):
        with np.load(write_heldout(tmp_path / f"heldout-{seed}.npz", source, seed)) as held:
            assert np.array_equal(np.bincount(held["labels"]), np.full(10, 100))
            assert not digests(held["images"]) & reachable
            heldouts.append(held["images"])
    assert not np.array_equal(*heldouts)  # drawn with the course's secret seed


def test_the_accuracy_lines_separate_the_recorded_calibration():
    """The lines in tlcourse.grading.grade.accuracy against the calibration's records: the
    fine-tuning line between every head-only and every fine-tuned run, full marks within the
    reference's spread, reruns identical."""
    import json

    from tlcourse.grading.grade import accuracy

    record = PROJECT_ROOT / "results" / "grading" / "03-finetuning-calibration.json"
    variants = json.loads(record.read_text())["variants"]
    e3, e1 = variants["reference-E3"], variants["head-only-E1"]
    assert len(e3["seeds"]) >= 10 and len(e1["seeds"]) >= 10
    assert e1["least_moved_block_max"] < accuracy.MOVED_AT < e3["least_moved_block_min"]
    assert e3["held_out_accuracy_mean"] - 2 * e3["held_out_accuracy_std"] >= accuracy.FULL_AT
    assert accuracy.ZERO_AT < accuracy.FULL_AT <= e3["held_out_accuracy_min"]
    assert e3["repeat_spread"] == e1["repeat_spread"] == 0
