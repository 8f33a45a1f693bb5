"""Training on small real CIFAR-10 subsets: feature cache, resume, collapse detection."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from tlcourse.data import make_dataset
from tlcourse.evaluate import evaluate_model
from tlcourse.models import transfer_model
from tlcourse.train import (
    CollapseMonitor,
    TrainConfig,
    feature_dataset,
    fit,
    is_collapsed,
    learning_rate_schedule,
)


def test_is_collapsed_reads_loss_and_accuracy():
    assert is_collapsed(math.log(10), 0.10, 10)
    assert is_collapsed(2.3030, 0.12, 10)
    assert not is_collapsed(2.25, 0.10, 10)  # the loss moves: slow, not stuck
    assert not is_collapsed(2.3026, 0.30, 10)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="strategy='E7'"):
        TrainConfig(experiment="E7")
    with pytest.raises(ValueError, match="image_size=16"):
        TrainConfig(image_size=16)
    with pytest.raises(ValueError, match="normalization='bgr'"):
        TrainConfig(normalization="bgr")
    with pytest.raises(ValueError, match="schedule='step'"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="needs `schedule='cosine'`"):
        TrainConfig(warmup_epochs=1)
    with pytest.raises(ValueError, match="warmup_epochs=5"):
        TrainConfig(schedule="cosine", warmup_epochs=5, epochs=5)
    with pytest.raises(ValueError, match="use `augment=True`"):
        TrainConfig(experiment="E3", flip_cache=True)
    assert TrainConfig(experiment="E1", flip_cache=True).uses_flip_cache


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(epochs=4, learning_rate=3e-4, schedule="cosine", warmup_epochs=1)
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == 0 and rates[1] == pytest.approx(1.5e-4)
    assert rates[2] == pytest.approx(3e-4)  # the peak, after one epoch
    assert rates[3] == pytest.approx(1.5e-4, rel=1e-3)  # half-way down the cosine
    assert rates[4] == pytest.approx(0, abs=1e-9)
    assert learning_rate_schedule(TrainConfig(learning_rate=1e-3), 10) == 1e-3


def test_flip_cache_draws_each_image_mirrored_half_of_the_time():
    features = np.arange(1000, dtype="float32")[:, None]
    mirrored = -features
    labels = np.zeros(1000, np.int64)
    ds = feature_dataset(features, labels, 2, batch_size=100, shuffle_seed=0, mirrored=mirrored)
    first = np.concatenate([x.numpy() for x, _ in ds])[:, 0]
    second = np.concatenate([x.numpy() for x, _ in ds])[:, 0]
    assert sorted(np.abs(first)) == list(range(1000))  # every image once an epoch
    assert 0.4 < (first < 0).mean() < 0.6  # about half of them mirrored
    assert not np.array_equal(np.sign(first), np.sign(second))  # new draws every epoch


def test_e1_with_flip_cache_and_cosine_schedule_trains(small_split, weights_npz):
    train, val = small_split
    model = transfer_model(weights=weights_npz, input_shape=(64, 64, 3))
    config = TrainConfig(
        experiment="E1", epochs=4, image_size=64, normalization="imagenet", flip_cache=True,
        schedule="cosine", warmup_epochs=1, seed=0,
    )  # fmt: skip
    result = fit(model, train, val, config, verbose=0)
    assert result.history["val_accuracy"][-1] > 0.35  # chance is 0.10
    assert result.cpu_time_s > 0


@pytest.mark.parametrize(
    ("experiment", "frozen_layer", "trained_layer", "trainable"),
    [
        ("E1", "fire9_expand3x3", "head_dense", 5_130),
        ("E2", "fire7_expand3x3", "fire8_squeeze", 391_306),
    ],
)
def test_training_on_cached_features_trains_the_full_model(
    small_split, weights_npz, experiment, frozen_layer, trained_layer, trainable
):
    train, val = small_split
    model = transfer_model(weights=weights_npz)
    frozen_before = model.get_layer(frozen_layer).kernel.numpy().copy()
    trained_before = model.get_layer(trained_layer).kernel.numpy().copy()
    config = TrainConfig(
        experiment=experiment, epochs=6, learning_rate=1e-4 if experiment == "E2" else 1e-3,
        normalization="imagenet", seed=0,
    )  # fmt: skip
    assert config.uses_feature_cache
    result = fit(model, train, val, config, verbose=0)
    np.testing.assert_array_equal(model.get_layer(frozen_layer).kernel.numpy(), frozen_before)
    assert not np.array_equal(model.get_layer(trained_layer).kernel.numpy(), trained_before)
    # The layers trained on cached features are the full model's own: evaluating the full
    # model on images gives the last epoch's validation accuracy.
    dataset = make_dataset(val.images, val.labels, num_classes=10, normalization="imagenet")
    full = evaluate_model(model, dataset, val.class_names)
    assert full.accuracy == pytest.approx(result.history["val_accuracy"][-1], abs=1e-6)
    assert full.accuracy > 0.3  # chance is 0.10
    assert not result.collapsed
    assert result.freeze.trainable_params == trainable


def test_interrupted_run_resumes_where_it_stopped(small_split, weights_npz, tmp_path):
    train, val = small_split
    config = TrainConfig(experiment="E3", epochs=3, learning_rate=1e-4, seed=1)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            transfer_model(weights=weights_npz),
            train,
            val,
            config,
            workdir=tmp_path,
            callbacks=[Interrupt()],
            verbose=0,
        )
    first_two = (tmp_path / "history.json").read_text()
    assert '"1"' in first_two and '"2"' not in first_two

    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    result = fit(
        transfer_model(weights=weights_npz),
        train,
        val,
        config,
        workdir=tmp_path,
        callbacks=[Record()],
        verbose=0,
    )
    assert seen == [2]  # only the missing epoch ran
    assert len(result.history["loss"]) == 3
    assert "Resumed after epoch 2" in result.notes[0]


def test_dead_backbone_is_reported_as_collapsed(small_split, weights_npz):
    """Kill every ReLU of fire9, as Adam at 1e-3 does in E3: the run must say so."""
    train, val = small_split
    model = transfer_model(weights=weights_npz)
    for part in ("expand1x1", "expand3x3"):
        layer = model.get_layer(f"fire9_{part}")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, np.full_like(bias, -1e4)])
    config = TrainConfig(experiment="E2", epochs=6, seed=0)
    result = fit(model, train, val, config, verbose=0)
    assert result.collapsed and result.collapse_epoch == 1
    assert len(result.history["loss"]) == 1  # every fire9 ReLU is dead: stopped at once
    assert result.dead_channels == 1.0
    assert "collapsed" in result.notes[0] and "2.303" in result.notes[0]


def test_collapse_monitor_stops_only_on_proof_and_flags_a_stuck_ending():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stuck, moving = {"loss": 2.3026, "accuracy": 0.1}, {"loss": 2.0, "accuracy": 0.3}
    monitor = CollapseMonitor(10)  # no probe: no proof that the ReLUs are dead
    monitor.set_model(model)
    for epoch, logs in enumerate([stuck, moving, stuck, stuck, stuck]):
        monitor.on_epoch_end(epoch, logs)
    assert monitor.collapse_epoch is None  # no proof: it may still move
    assert not getattr(model, "stop_training", False)
    monitor.on_train_end()
    assert monitor.collapse_epoch == 3  # ended stuck since epoch 3

    recovered = CollapseMonitor(10)
    recovered.set_model(model)
    for epoch, logs in enumerate([stuck, stuck, moving]):
        recovered.on_epoch_end(epoch, logs)
    recovered.on_train_end()
    assert recovered.collapse_epoch is None


def test_e3_on_images_preprocessed_once_matches_preprocessing_per_batch(small_split, weights_npz):
    """E3 without augmentation normalises and resizes every image once, not every epoch."""
    train, val = small_split
    model = transfer_model(input_shape=(48, 48, 3), weights=weights_npz)
    config = TrainConfig(experiment="E3", epochs=1, learning_rate=1e-4, image_size=48, seed=0)
    result = fit(model, train, val, config, verbose=0)
    dataset = make_dataset(
        val.images, val.labels, num_classes=10, normalization="unit", image_size=48
    )
    per_batch = evaluate_model(model, dataset, val.class_names)
    assert per_batch.accuracy == pytest.approx(result.history["val_accuracy"][-1], abs=1e-6)
    assert not result.notes


def test_a_model_that_does_not_fit_the_data_or_config_is_refused_naming_the_fix(small_split):
    train, val = small_split
    model = transfer_model(classes=10, input_shape=(32, 32, 3), weights=None)
    with pytest.raises(ValueError, match=r"takes 32x32 images .*input_shape=\(64, 64, 3\)"):
        fit(model, train, val, TrainConfig(image_size=64, epochs=1))
    narrow = transfer_model(classes=3, input_shape=(32, 32, 3), weights=None)
    with pytest.raises(ValueError, match=r"3 outputs but the data has 10 classes"):
        fit(narrow, train, val, TrainConfig(epochs=1))
