"""The disk cache of frozen-backbone features: computed once, keyed by everything that matters."""

from __future__ import annotations

import numpy as np

from tlcourse import train as training
from tlcourse.feature_store import FeatureStore
from tlcourse.models import transfer_model
from tlcourse.train import TrainConfig, fit


def test_store_computes_once_and_keys_by_weights_images_and_settings(tmp_path):
    store = FeatureStore(tmp_path)
    images = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    weights = [np.ones(3, np.float32)]
    calls = []

    def compute(x):
        calls.append(len(x))
        return x.reshape(len(x), -1).astype(np.float32) * len(calls)

    first = store.load_or_compute({"size": 32}, weights, images, compute)
    again = store.load_or_compute({"size": 32}, weights, images, compute)
    np.testing.assert_array_equal(first, again)
    assert calls == [2]
    store.load_or_compute({"size": 64}, weights, images, compute)
    store.load_or_compute({"size": 32}, [np.zeros(3, np.float32)], images, compute)
    store.load_or_compute({"size": 32}, weights, images[::-1], compute)
    assert calls == [2, 2, 2, 2]
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_a_damaged_entry_is_computed_again(tmp_path):
    store = FeatureStore(tmp_path)
    images = np.zeros((3, 2, 2, 3), np.uint8)
    weights = [np.ones(1, np.float32)]
    store.load_or_compute({}, weights, images, lambda x: np.ones((3, 4), np.float32))
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(path.read_bytes()[:20])  # cut short, as by a full disk
    features = store.load_or_compute({}, weights, images, lambda x: np.full((3, 4), 7.0))
    assert (features == 7).all()
    assert (np.load(path) == 7).all()


def test_second_run_reuses_the_stored_features(small_split, weights_npz, tmp_path, monkeypatch):
    train, val = small_split
    calls = []
    extract = training.extract_features
    monkeypatch.setattr(training, "extract_features", lambda *a: calls.append(1) or extract(*a))
    config = TrainConfig(experiment="E1", epochs=1, normalization="imagenet", seed=0)
    notes = []
    for dropout in (0.5, 0.0):  # a head setting: the features stay the same
        model = transfer_model(weights=weights_npz, dropout=dropout)
        result = fit(model, train, val, config, verbose=0, feature_store=tmp_path)
        notes.append(" ".join(result.notes))
    assert len(calls) == 1
    assert len(list(tmp_path.glob("*.npy"))) == 1
    # The run that reused them says so: its time does not include computing them.
    assert "feature store" not in notes[0]
    assert f"features of {len(train) + len(val)} images were read" in notes[1]
