"""tlcourse.plots: each figure holds the numbers it was given; saving is atomic."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter
from PIL import Image

from tlcourse.config import CIFAR10_CLASSES
from tlcourse.plots import (
    FROZEN_COLOR,
    TRAINABLE_COLOR,
    plot_confusion_matrix,
    plot_history,
    plot_network,
    plot_sample_grid,
    save_figure,
)

matplotlib.use("Agg")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY = {
    "loss": [2.1, 1.6, 1.3],
    "accuracy": [0.21, 0.42, 0.55],
    "val_loss": [1.9, 1.5, 1.4],
    "val_accuracy": [0.30, 0.47, 0.52],
}


def test_plot_history_draws_train_and_validation_per_epoch() -> None:
    fig = plot_history(HISTORY, title="E1")

    assert isinstance(fig, Figure)
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("Loss", "Accuracy")
    assert fig.get_suptitle() == "E1"
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        train, val = ax.lines
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_allclose(train.get_ydata(), HISTORY[key])
        np.testing.assert_allclose(val.get_ydata(), HISTORY[f"val_{key}"])
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
        assert ax.get_xlabel() == "epoch"
    # Accuracy stays a fraction in the data and reads as percent on the axis.
    assert isinstance(acc_ax.yaxis.get_major_formatter(), PercentFormatter)
    assert acc_ax.yaxis.get_major_formatter()(0.5, 0) in ("50%", "50.0%")


def test_plot_history_reference_line_and_train_only_history() -> None:
    fig = plot_history({"loss": [1.0, 0.5], "accuracy": [0.4, 0.6]}, reference=0.7429)

    acc_ax = fig.axes[1]
    assert len(fig.axes[0].lines) == 1  # no validation keys: train only
    train, reference = acc_ax.lines
    np.testing.assert_allclose(reference.get_ydata(), [0.7429, 0.7429])
    assert reference.get_linestyle() == "--"
    assert acc_ax.get_legend().get_texts()[-1].get_text() == "study (74.3%)"

    with pytest.raises(ValueError, match=r"divide a percentage by 100\. Received: reference=74"):
        plot_history(HISTORY, reference=74.29)
    with pytest.raises(ValueError, match=r"Received: keys \['lr'\]"):
        plot_history({"lr": [0.1]})


def _cell_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_plot_confusion_matrix_rows_show_percentages() -> None:
    matrix = np.array([[8, 2, 0], [1, 1, 1], [0, 0, 0]])
    fig = plot_confusion_matrix(matrix, ["cat", "dog", "bird"], title="test split")

    ax = fig.axes[0]
    assert ax.get_title() == "test split"
    assert ax.get_ylabel() == "True label" and ax.get_xlabel() == "Predicted label"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    texts = _cell_texts(fig)
    assert all(t.endswith("%") for t in texts)
    values = np.array([float(t.rstrip("%")) for t in texts]).reshape(3, 3)
    np.testing.assert_allclose(values[0], [80.0, 20.0, 0.0])
    np.testing.assert_allclose(values.sum(axis=1)[:2], [100.0, 100.0], atol=0.2)
    np.testing.assert_array_equal(values[2], 0.0)  # a class without examples: zeros, not NaN
    assert len(fig.axes) == 2  # the matrix and its colour bar


def test_plot_confusion_matrix_counts_and_checks() -> None:
    matrix = np.arange(100).reshape(10, 10)
    fig = plot_confusion_matrix(matrix, CIFAR10_CLASSES, normalize=False)

    assert [int(t) for t in _cell_texts(fig)] == list(range(100))
    with pytest.raises(ValueError, match=r"Received: matrix.shape=\(10, 10\)"):
        plot_confusion_matrix(matrix, ["cat", "dog"])


def _load_split(root: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        for path in sorted((root / name).glob("*.jpg")):
            images.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(label)
    return np.stack(images), np.array(labels)


def test_plot_sample_grid_on_real_cifar10(image_folder_root: Path) -> None:
    images, labels = _load_split(image_folder_root / "test")
    assert images.shape == (100, 32, 32, 3) and images.dtype == np.uint8

    fig = plot_sample_grid(images, labels, CIFAR10_CLASSES, per_class=4, seed=1)

    axes = np.array(fig.axes).reshape(10, 4)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == list(CIFAR10_CLASSES)
    for label, row in enumerate(axes):
        for ax in row:
            (shown,) = ax.images
            assert shown.get_interpolation() == "nearest"
            data = shown.get_array()
            assert data.dtype == np.uint8  # shown as loaded, not rescaled
            # The picture is one of this class's images.
            matches = np.flatnonzero((images == data).all(axis=(1, 2, 3)))
            assert matches.size and np.all(labels[matches] == label)

    def picked(seed: int) -> list[int]:
        grid = plot_sample_grid(images, labels, CIFAR10_CLASSES, per_class=4, seed=seed)
        shown = np.stack([ax.images[0].get_array() for ax in grid.axes])
        return [int(np.flatnonzero((images == s).all(axis=(1, 2, 3)))[0]) for s in shown]

    assert picked(1) == picked(1)
    assert picked(1) != picked(2)


def test_plot_sample_grid_with_one_hot_labels_and_a_short_class() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    labels = np.eye(2)[[0, 0, 0, 0, 1]]

    fig = plot_sample_grid(images, labels, ["many", "one"], per_class=3)

    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match=r"Received: len\(images\)=5, len\(labels\)=4"):
        plot_sample_grid(images, labels[:4], ["many", "one"])


def _tiny_squeezenet() -> keras.Model:
    """conv1 -> pool1 -> fire2 -> head, named as tlcourse names SqueezeNet 1.1; conv1 frozen."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, 2, name="pool1")(x)
    s = layers.Conv2D(4, 1, activation="relu", name="fire2_squeeze")(x)
    a = layers.Conv2D(6, 1, activation="relu", name="fire2_expand1x1")(s)
    b = layers.Conv2D(10, 3, padding="same", name="fire2_expand3x3")(s)
    b = layers.ReLU(name="fire2_expand3x3_relu")(b)
    x = layers.Concatenate(name="fire2_concat")([a, b])
    x = layers.Dropout(0.5, name="head_dropout")(x)
    x = layers.Conv2D(10, 1, name="head_conv")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.get_layer("conv1").trainable = False
    return model


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def test_plot_network_is_drawn_from_the_model(tmp_path: Path) -> None:
    model = _tiny_squeezenet()

    fig = plot_network(model, title="Tiny SqueezeNet")

    texts = _texts(fig)
    for block in ("image", "conv1", "pool1", "fire2", "head"):
        assert block in texts
    # Filter counts come from the layer configs; shapes from the layers' outputs.
    assert "squeeze 1\u00d71\n4 filters" in texts
    assert "expand 1\u00d71: 6" in texts and "expand 3\u00d73: 10" in texts
    assert "concat\n16 channels" in texts
    assert any(t.startswith("out 7\u00d77\u00d716") for t in texts)
    conv1_params = 3 * 3 * 3 * 8 + 8
    assert f"out 15\u00d715\u00d78  \u00b7  {conv1_params:,} params" in texts
    trainable = model.count_params() - conv1_params
    assert fig.get_suptitle() == (
        f"Tiny SqueezeNet\n{model.count_params():,} params: {trainable:,} trainable, "
        f"{conv1_params:,} frozen"
    )
    # One box per block, coloured by whether it will train.
    boxes = {p.get_gid(): p for p in fig.axes[0].patches if p.get_gid()}
    assert list(boxes) == [f"block:{b}" for b in ("image", "conv1", "pool1", "fire2", "head")]
    assert boxes["block:conv1"].get_facecolor() == to_rgba(FROZEN_COLOR[0])
    assert boxes["block:fire2"].get_facecolor() == to_rgba(TRAINABLE_COLOR[0])
    assert boxes["block:conv1"].get_facecolor() != boxes["block:fire2"].get_facecolor()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["trainable", "frozen", "no weights"]

    assert save_figure(fig, tmp_path / "network.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_network_unknown_layers_and_nested_models() -> None:
    base = _tiny_squeezenet()
    inputs = keras.Input((32, 32, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    model = keras.Model(inputs, base(x), name="wrapped")
    base.trainable = False

    fig = plot_network(model)

    boxes = [p.get_gid() for p in fig.axes[0].patches if p.get_gid()]
    assert boxes == [f"block:{b}" for b in ("pixels", "rescale", "conv1", "pool1", "fire2", "head")]
    assert fig.get_suptitle().startswith(f"wrapped\n{model.count_params():,} params: 0 trainable")
    assert any(t.startswith("Rescaling") for t in _texts(fig))


def test_save_figure_writes_a_png_atomically(tmp_path: Path) -> None:
    target = tmp_path / "figures" / "deep" / "history.png"

    out = save_figure(plot_history(HISTORY), target)

    assert out == target
    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(target) as image:
        image.verify()
    assert sorted(p.name for p in target.parent.iterdir()) == ["history.png"]  # no temp file


def test_save_figure_failure_leaves_nothing(tmp_path: Path) -> None:
    fig = plot_history(HISTORY)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    fig.savefig = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, tmp_path / "history.png")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"must end in \.png.*Received: path="):
        save_figure(plot_history(HISTORY), tmp_path / "history.jpg")


def test_figures_are_not_left_open_in_pyplot() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_history(HISTORY)
    plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"])
    assert plt.get_fignums() == before


def test_cell_text_format_is_percent() -> None:
    texts = _cell_texts(plot_confusion_matrix(np.array([[1, 2], [0, 3]]), ["x", "y"]))
    assert all(re.fullmatch(r"\d+\.\d%", t) for t in texts)


def test_plot_runs_draws_one_line_a_run_and_the_reference():
    from tlcourse.plots import plot_runs

    fig = plot_runs(
        {"a": {"val_accuracy": [0.1, 0.5, 0.6]}, "b": {"val_accuracy": [0.2, 0.3]}, "c": {}},
        reference=0.74,
    )
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b", "study (74.0%)"]
    assert list(ax.lines[1].get_xdata()) == [1, 2]
    with pytest.raises(ValueError, match="loss"):
        plot_runs({"a": {"val_accuracy": [0.1]}}, metric="loss")


def test_plot_by_input_size_skips_missing_points_and_labels_map_sides():
    from tlcourse.plots import plot_by_input_size

    fig = plot_by_input_size(
        [32, 64, 128], {"val": [0.4, 0.56, 0.7], "test": [0.4, None, 0.69]}, map_sides=[1, 3, 7]
    )
    ax = fig.axes[0]
    assert list(ax.lines[1].get_xdata()) == [32, 128]
    assert [t.get_text() for t in ax.texts] == ["fire9: 1×1", "fire9: 3×3", "fire9: 7×7"]
