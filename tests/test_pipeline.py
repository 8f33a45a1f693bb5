"""tlcourse.pipeline on real CIFAR-10: seeded splits and tf.data pipelines."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.imageset import ImageSet
from tlcourse.pipeline import make_dataset, stratified_split, take_per_class
from tlcourse.preprocessing import normalize

# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def test_stratified_split_keeps_each_class_share(folder_sets):
    labels = folder_sets[0].labels
    train_idx, val_idx = stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[val_idx]).tolist() == [1_000] * 10
    assert np.bincount(labels[train_idx]).tolist() == [4_000] * 10
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(50_000))
    again = stratified_split(labels, 0.2, seed=0)
    assert np.array_equal(again[1], val_idx)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=1)[1], val_idx)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match=f"Received: val_fraction={bad}"):
            stratified_split(labels, bad)


def test_take_per_class(folder_sets):
    labels = folder_sets[1].labels
    picked = take_per_class(labels, 7, seed=3)
    assert np.bincount(labels[picked]).tolist() == [7] * 10
    assert np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, take_per_class(labels, 7, seed=3))
    assert not np.array_equal(picked, take_per_class(labels, 7, seed=4))
    with pytest.raises(ValueError, match="fewer than per_class=1001"):
        take_per_class(labels, 1001)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(folder_sets) -> ImageSet:
    test = folder_sets[1]
    return test.subset(take_per_class(test.labels, 5))  # 50 real images


def _first_batch(dataset):
    x, y = next(iter(dataset))
    return x.numpy(), y.numpy()


def test_make_dataset_unit_and_imagenet(small):
    ds = make_dataset(
        small.images, small.labels, num_classes=10, batch_size=16, normalization="unit"
    )
    batches = list(ds)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x, y = (b.numpy() for b in batches[0])
    assert x.shape == (16, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x, small.images[:16] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y.sum(axis=1), np.ones(16))
    np.testing.assert_array_equal(y.argmax(axis=1), small.labels[:16])

    x, _ = _first_batch(make_dataset(small.images, small.labels, num_classes=10, batch_size=16))
    np.testing.assert_allclose(x, normalize(small.images[:16], "imagenet"), atol=1e-5)
    assert -2.2 < x.min() < 0.0 < 2.0 < x.max() < 2.7


def test_make_dataset_resizes(small):
    ds = make_dataset(small.images, small.labels, num_classes=10, batch_size=8, image_size=64)
    x, _ = _first_batch(ds)
    assert x.shape == (8, 64, 64, 3)
    assert ds.element_spec[0].shape.as_list() == [None, 64, 64, 3]


def test_make_dataset_augments_per_epoch_and_seed(small):
    def make(**kwargs):
        return make_dataset(
            small.images,
            small.labels,
            num_classes=10,
            batch_size=50,
            normalization="unit",
            **kwargs,
        )

    plain, _ = _first_batch(make())
    augmented = make(augment=True, seed=5)
    first, second = (x.numpy() for x, _ in augmented.repeat(2))
    assert first.shape == plain.shape == (50, 32, 32, 3)
    assert not np.allclose(first, plain) and not np.allclose(first, second)
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.mean() > 0.8 * plain.mean()
    np.testing.assert_array_equal(first, _first_batch(make(augment=True, seed=5))[0])
    big, _ = _first_batch(make(augment=True, image_size=64))
    assert big.shape == (50, 64, 64, 3)


def test_make_dataset_shuffles_each_epoch(small):
    ds = make_dataset(small.images, small.labels, num_classes=10, batch_size=50, shuffle=True)
    first, second = (y.numpy().argmax(axis=1) for _, y in ds.repeat(2))
    assert not np.array_equal(first, second)
    assert sorted(first) == sorted(second) == sorted(small.labels)
    again = make_dataset(small.images, small.labels, num_classes=10, batch_size=50, shuffle=True)
    np.testing.assert_array_equal(_first_batch(again)[1].argmax(axis=1), first)


@pytest.mark.parametrize(
    ("kwargs", "received"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"image_size": 16}, "image_size=16"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"normalization": "caffe"}, "normalization='caffe'"),
        ({"labels": np.zeros((50, 1), np.int64)}, r"labels.shape=\(50, 1\)"),
        ({"labels": np.zeros(49, np.int64)}, r"labels.shape=\(49,\)"),
        ({"images": np.zeros((50, 32, 32, 3), np.float32)}, "images.dtype=float32"),
    ],
)
def test_make_dataset_checks_arguments(small, kwargs, received):
    arguments = {"images": small.images, "labels": small.labels, "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=f"Received: .*{received}"):
        make_dataset(**arguments)
