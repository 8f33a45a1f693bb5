"""Figures from numbers: training curves, confusion matrices, sample grids, the network.

Every function takes numbers (or a Keras model, for the network diagram) and returns a
``matplotlib.figure.Figure``; none computes a metric or calls ``plt.show()``. Figures are built
with the object API (``Figure()``, not ``pyplot``), so they work headless, are never shown twice
in a notebook, and need no closing; ``save_figure`` writes one to disk.
"""

from __future__ import annotations

import os
import re
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator, PercentFormatter

#: Box colours of ``plot_network``: (face, edge) for each kind of block.
TRAINABLE_COLOR: tuple[str, str] = ("#c8e6c9", "#2e7d32")
FROZEN_COLOR: tuple[str, str] = ("#cfd8dc", "#455a64")
NO_WEIGHTS_COLOR: tuple[str, str] = ("#ffffff", "#9e9e9e")

#: ``save_figure`` resolution, in dots per inch.
SAVE_DPI = 120


# --------------------------------------------------------------------------- training curves


def plot_history(
    history: Mapping[str, Sequence[float]],
    *,
    title: str | None = None,
    reference: float | None = None,
    reference_label: str = "study",
) -> Figure:
    """Loss and accuracy per epoch, side by side, train against validation.

    Args:
        history: a Keras ``History.history`` dict; ``"loss"`` and ``"accuracy"`` are drawn, with
            ``"val_loss"`` and ``"val_accuracy"`` where present. Epochs are numbered from 1.
        title: figure title. Defaults to none.
        reference: an accuracy to compare against, as a fraction 0..1 (``0.7429``, not
            ``74.29``), drawn as a dashed horizontal line. Defaults to none.
        reference_label: legend text of the reference line. Defaults to ``"study"``.

    Returns:
        A figure with one axes per metric present (loss first); accuracy axes read in percent,
        while their line data stay fractions, as in ``history``.
    """
    metrics = [m for m in ("loss", "accuracy") if len(history.get(m, ())) > 0]
    if not metrics:
        raise ValueError(
            "`history` must hold a non-empty 'loss' or 'accuracy' list, as Keras' "
            f"`model.fit(...).history` does. Received: keys {sorted(history)}"
        )
    if reference is not None and not 0.0 <= reference <= 1.0:
        raise ValueError(
            "`reference` is an accuracy as a fraction 0..1; divide a percentage by 100. "
            f"Received: reference={reference}"
        )
    fig = Figure(figsize=(5.0 * len(metrics), 3.8), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = np.asarray(history.get(key, ()), dtype=float)
            if values.size:
                ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, label=label)
        ax.set_title(metric.capitalize())
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if metric == "accuracy":
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
            if reference is not None:
                ax.axhline(
                    reference,
                    linestyle="--",
                    color="0.3",
                    label=f"{reference_label} ({reference:.1%})",
                )
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_runs(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    metric: str = "val_accuracy",
    title: str | None = None,
    reference: float | None = None,
    reference_label: str = "study",
) -> Figure:
    """One metric of several runs on one axes: one line a run, epochs from 1.

    Args:
        histories: ``{run label: Keras-style history}``; runs without ``metric`` are skipped.
        metric: the history key to draw, e.g. ``"val_accuracy"`` or ``"loss"``. Accuracies
            (keys ending in ``accuracy``) read in percent.
        title: axes title. Defaults to none.
        reference: a value to compare against (a fraction for accuracies), drawn dashed.
        reference_label: legend text of the reference line. Defaults to ``"study"``.
    """
    runs = {label: h[metric] for label, h in histories.items() if len(h.get(metric, ())) > 0}
    if not runs:
        raise ValueError(
            f"No run has a non-empty {metric!r} list. Received: runs {sorted(histories)}"
        )
    fig = Figure(figsize=(6.4, 3.9), layout="constrained")
    ax = fig.subplots()
    for label, values in runs.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, values.size + 1), values, marker="o", ms=3, label=label)
    if reference is not None:
        text = f"{reference:.1%}" if metric.endswith("accuracy") else f"{reference:.3g}"
        ax.axhline(reference, linestyle="--", color="0.3", label=f"{reference_label} ({text})")
    if metric.endswith("accuracy"):
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_by_input_size(
    sizes: Sequence[int],
    series: Mapping[str, Sequence[float | None]],
    *,
    map_sides: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Accuracy against input size, one line a series (``None`` values are left out).

    Args:
        sizes: input sides in pixels, ascending.
        series: ``{label: accuracies}``, fractions 0..1, one per size.
        map_sides: the side of fire9's output map at each size, written under each point.
        title: axes title. Defaults to none.
    """
    fig = Figure(figsize=(6.4, 3.9), layout="constrained")
    ax = fig.subplots()
    for label, values in series.items():
        points = [(s, v) for s, v in zip(sizes, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    if map_sides is not None:
        for size, side in zip(sizes, map_sides, strict=True):
            ax.annotate(
                f"fire9: {side}\u00d7{side}",
                (size, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color="0.3",
            )
    ax.set_xticks(list(sizes))
    ax.set_xlabel("input side (px)")
    ax.set_ylabel("accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    *,
    normalize: bool = True,
    title: str | None = None,
) -> Figure:
    """A confusion matrix drawn by scikit-learn's ``ConfusionMatrixDisplay``.

    Args:
        matrix: counts ``(C, C)``, rows = true class, columns = predicted class (as
            ``Evaluation.confusion_matrix``).
        class_names: the ``C`` class names in label order.
        normalize: show each row as percentages of that class's examples (a row without
            examples shows zeros); ``False`` shows the counts. Defaults to ``True``.
        title: axes title. Defaults to none.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    counts = np.asarray(matrix)
    names = [str(n) for n in class_names]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise ValueError(
            f"`matrix` must be square with one row per class name ({len(names)} names). "
            f"Received: matrix.shape={counts.shape}"
        )
    num = len(names)
    side = max(4.5, 0.55 * num + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    text_kw = {"fontsize": 8 if num > 6 else 10}
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        fractions = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        display = ConfusionMatrixDisplay(fractions, display_labels=names)
        display.plot(
            ax=ax,
            cmap="Blues",
            values_format=".1%",
            xticks_rotation=45,
            im_kw={"vmin": 0.0, "vmax": 1.0},
            text_kw=text_kw,
        )
        display.im_.colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    else:
        display = ConfusionMatrixDisplay(counts.astype(np.int64), display_labels=names)
        display.plot(ax=ax, cmap="Blues", values_format="d", xticks_rotation=45, text_kw=text_kw)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- sample grid


def plot_sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    per_class: int = 8,
    seed: int = 0,
) -> Figure:
    """A grid of example images: one row per class, ``per_class`` random examples in each.

    Args:
        images: ``(N, H, W, 3)`` or ``(N, H, W)`` pixels; uint8 is shown as it is (no
            rescaling, nearest-neighbour), floats must lie in 0..1.
        labels: integer labels ``(N,)`` or one-hot rows ``(N, C)``.
        class_names: the ``C`` class names in label order; row ``i`` shows class ``i``.
        per_class: examples per row; a class with fewer shows what it has. Defaults to 8.
        seed: seed of the random choice of examples. Defaults to 0.
    """
    from tlcourse.evaluate import true_labels

    pixels = np.asarray(images)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (3, 4) or (pixels.ndim == 4 and pixels.shape[-1] not in (3, 4)):
        raise ValueError(
            "`images` must be a batch of images, shape (N, H, W, 3) or (N, H, W). "
            f"Received: images.shape={np.shape(images)}"
        )
    targets = true_labels(labels)
    if len(targets) != len(pixels):
        raise ValueError(
            "`images` and `labels` must hold one entry per example. "
            f"Received: len(images)={len(pixels)}, len(labels)={len(targets)}"
        )
    if per_class < 1:
        raise ValueError(f"`per_class` must be at least 1. Received: per_class={per_class}")
    names = [str(n) for n in class_names]
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(0.9 * per_class + 1.4, 0.9 * len(names)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    axes = fig.subplots(len(names), per_class, squeeze=False)
    gray = {"cmap": "gray", "vmin": 0, "vmax": 255 if pixels.dtype == np.uint8 else 1}
    for row, name in enumerate(names):
        members = np.flatnonzero(targets == row)
        chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < chosen.size:
                image = pixels[chosen[col]]
                ax.imshow(image, interpolation="nearest", **(gray if image.ndim == 2 else {}))
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    return fig


# --------------------------------------------------------------------------- network diagram

_BLOCK_RE = re.compile(r"^(conv\d+|pool\d+|fire\d+)(?:_.*)?$")
_FIRE_PARTS = ("squeeze", "expand1x1", "expand3x3")

# Layout of plot_network, in inches (the axes span the figure, one data unit = one inch).
_BOX_W = 3.7
_GAP = 0.32  # between boxes in a column (room for the arrow)
_COL_GAP = 0.8
_MARGIN = 0.3
_TOP = 0.75  # title strip
_BOTTOM = 0.45  # legend strip
_MAX_COL_H = 8.0
_LINE = 0.19  # one text line at 7.5 pt, with leading
_FIRE_H = 0.98
_FONT = 7.5


@dataclass
class _Block:
    name: str
    layers: list[Any] = field(default_factory=list)

    @property
    def weights(self) -> int:
        return sum(int(np.prod(w.shape)) for layer in self.layers for w in layer.weights)

    @property
    def trainable_weights(self) -> int:
        return sum(int(np.prod(w.shape)) for layer in self.layers for w in layer.trainable_weights)


def _block_name(layer_name: str) -> str:
    """``fire2_squeeze_relu`` -> ``fire2``; ``head_*``/``predictions`` -> ``head``; else itself."""
    match = _BLOCK_RE.match(layer_name)
    if match:
        return match.group(1)
    if layer_name.startswith("head_") or layer_name == "predictions":
        return "head"
    return layer_name


def _flat_layers(model: Any) -> list[Any]:
    """``model.layers`` with nested functional models replaced by their own layers."""
    out: list[Any] = []
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        if inner and hasattr(layer, "inputs") and hasattr(layer, "outputs"):
            out.extend(sub for sub in _flat_layers(layer) if not _is_input(sub) or not out)
        else:
            out.append(layer)
    return out


def _is_input(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"


def _group_blocks(layers: Sequence[Any]) -> list[_Block]:
    blocks: list[_Block] = []
    for layer in layers:
        name = _block_name(layer.name)
        if not blocks or blocks[-1].name != name:
            blocks.append(_Block(name))
        blocks[-1].layers.append(layer)
    return blocks


def _shape_text(layer: Any) -> str:
    try:
        shape = tuple(layer.output.shape)[1:]
    except (AttributeError, ValueError, RuntimeError):
        return "?"
    return "\u00d7".join("?" if d is None else str(d) for d in shape) or "scalar"


def _pair(value: Any) -> str:
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    return "\u00d7".join(str(v) for v in values)


def _describe(layer: Any) -> str | None:
    """Short text for one layer, from its class and config; ``None`` to leave it out."""
    kind = type(layer).__name__
    config = layer.get_config()
    if _is_input(layer):
        return "input"
    if "filters" in config and "kernel_size" in config:
        strides = tuple(config.get("strides", (1, 1)))
        text = f"conv {_pair(config['kernel_size'])}"
        if any(s != 1 for s in strides):
            text += f" /{strides[0]}"
        text += f", {config['filters']} filters"
        activation = config.get("activation", "linear")
        return text if activation == "linear" else f"{text}, {activation}"
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = "max" if kind.startswith("Max") else "avg"
        return f"{pool} pool {_pair(config['pool_size'])} /{_pair(config['strides'])[0]}"
    if kind.startswith("Global"):
        return "global " + ("max" if "Max" in kind else "avg") + " pool"
    if kind == "Dropout":
        return f"dropout {config['rate']:g}"
    if kind == "Dense":
        return f"dense {config['units']}"
    if kind == "Activation":
        return config["activation"] if isinstance(config["activation"], str) else "activation"
    if kind == "Softmax":
        return "softmax"
    if kind == "ReLU":
        return "relu"
    return kind


def _fire_parts(block: _Block) -> dict[str, Any] | None:
    """The squeeze / expand1x1 / expand3x3 convolutions of a fire block, or ``None``."""
    parts: dict[str, Any] = {}
    for layer in block.layers:
        for part in _FIRE_PARTS:
            if layer.name == f"{block.name}_{part}" and "filters" in layer.get_config():
                parts[part] = layer
    return parts if len(parts) == len(_FIRE_PARTS) else None


def _status_color(weights: int, trainable: int) -> tuple[str, str]:
    if trainable:
        return TRAINABLE_COLOR
    return FROZEN_COLOR if weights else NO_WEIGHTS_COLOR


def _detail_lines(block: _Block) -> list[str]:
    texts = [t for t in (_describe(layer) for layer in block.layers) if t]
    # A separate relu layer after a convolution reads as part of it.
    merged: list[str] = []
    for text in texts:
        if text == "relu" and merged and merged[-1].startswith("conv"):
            merged[-1] += ", relu"
        else:
            merged.append(text)
    return textwrap.wrap(" \u2192 ".join(merged), width=62) or [""]


def _box(ax: Any, x: float, y: float, w: float, h: float, color: tuple[str, str], **kw) -> Any:
    patch = FancyBboxPatch(
        (x, y),
        w,
        h,
        boxstyle="round,pad=0,rounding_size=0.06",
        facecolor=color[0],
        edgecolor=color[1],
        linewidth=1.1,
        **kw,
    )
    ax.add_patch(patch)
    return patch


def _arrow(ax: Any, points: Sequence[tuple[float, float]], color: str = "0.35") -> None:
    path = MplPath(points, [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1))
    ax.add_patch(
        FancyArrowPatch(
            path=path,
            arrowstyle="-|>,head_length=4,head_width=2.2",
            color=color,
            linewidth=1.0,
            shrinkA=0,
            shrinkB=0,
        )
    )


def _draw_header(ax: Any, block: _Block, x: float, top: float) -> None:
    y = top - 0.07
    ax.text(x + 0.1, y, block.name[:22], ha="left", va="top", fontsize=8.5, weight="bold")
    info = f"out {_shape_text(block.layers[-1])}  \u00b7  {block.weights:,} params"
    ax.text(x + _BOX_W - 0.1, y, info, ha="right", va="top", fontsize=_FONT, color="0.15")


def _draw_fire(ax: Any, block: _Block, parts: dict[str, Any], x: float, top: float) -> None:
    """Squeeze -> [expand 1x1 | expand 3x3] -> concat, left to right inside the block's box."""
    mid = top - 0.25 - (_FIRE_H - 0.25) / 2  # vertical centre of the mini diagram
    sub_h, pair_h, pair_gap = 0.44, 0.2, 0.05
    sq_x, sq_w = x + 0.15, 0.85
    ex_x, ex_w = sq_x + sq_w + 0.32, 1.05
    cc_x, cc_w = ex_x + ex_w + 0.32, 0.85

    def conv_text(layer: Any, part: str) -> tuple[str, int]:
        config = layer.get_config()
        return f"{part} {_pair(config['kernel_size'])}", config["filters"]

    def sub_color(layer: Any) -> tuple[str, str]:
        weights = sum(int(np.prod(w.shape)) for w in layer.weights)
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        return "#ffffff", _status_color(weights, trainable)[1]

    squeeze = parts["squeeze"]
    label, filters = conv_text(squeeze, "squeeze")
    _box(ax, sq_x, mid - sub_h / 2, sq_w, sub_h, sub_color(squeeze))
    ax.text(
        sq_x + sq_w / 2, mid, f"{label}\n{filters} filters", ha="center", va="center", fontsize=6.8
    )
    for i, part in enumerate(("expand1x1", "expand3x3")):
        layer = parts[part]
        y_c = mid + (pair_h + pair_gap) / 2 * (1 if i == 0 else -1)
        label, filters = conv_text(layer, "expand")
        _box(ax, ex_x, y_c - pair_h / 2, ex_w, pair_h, sub_color(layer))
        ax.text(ex_x + ex_w / 2, y_c, f"{label}: {filters}", ha="center", va="center", fontsize=6.8)
        _arrow(ax, [(sq_x + sq_w, mid), (ex_x, y_c)])
        _arrow(ax, [(ex_x + ex_w, y_c), (cc_x, mid)])
    _box(ax, cc_x, mid - sub_h / 2, cc_w, sub_h, ("#ffffff", NO_WEIGHTS_COLOR[1]))
    channels = _shape_text(block.layers[-1]).split("\u00d7")[-1]
    ax.text(
        cc_x + cc_w / 2, mid, f"concat\n{channels} channels", ha="center", va="center", fontsize=6.8
    )


def plot_network(model: Any, *, title: str | None = None) -> Figure:
    """A block diagram drawn from a Keras model: what is in it and what will train.

    Layers are walked in ``model.layers`` order (nested functional models are opened) and
    grouped into blocks by name: ``conv1``, ``pool1``, ``fire2`` ... (every ``fireN_*`` layer),
    ``head`` (``head_*`` and ``predictions``); any other layer is a block of its own. Each
    block is one box, from input to output, labelled with its name, output shape and
    parameter count; a fire module shows squeeze -> [expand 1x1 | expand 3x3] -> concat with
    the filter counts of its layers. Boxes are coloured by whether the block has trainable
    weights, only frozen ones, or none; long networks wrap into columns.

    Args:
        model: a built Keras functional model.
        title: first title line. Defaults to ``model.name``.
    """
    blocks = _group_blocks(_flat_layers(model))
    if not blocks:
        raise ValueError(f"`model` has no layers to draw. Received: model={model.name!r}")

    # Box heights, then columns of roughly equal height.
    fires = {b.name: _fire_parts(b) for b in blocks}
    heights = [
        _FIRE_H if fires[b.name] else 0.3 + _LINE * len(_detail_lines(b)) + 0.06 for b in blocks
    ]
    total = sum(heights) + _GAP * (len(blocks) - 1)
    ncols = max(1, int(np.ceil(total / _MAX_COL_H)))
    target = total / ncols
    columns: list[list[int]] = [[]]
    used = 0.0
    for i, h in enumerate(heights):
        if columns[-1] and used + h > target + 0.5 and len(columns) < ncols:
            columns.append([])
            used = 0.0
        columns[-1].append(i)
        used += h + _GAP
    col_h = max(sum(heights[i] for i in col) + _GAP * (len(col) - 1) for col in columns)

    width = 2 * _MARGIN + len(columns) * _BOX_W + (len(columns) - 1) * _COL_GAP
    height = _TOP + col_h + _GAP / 2 + _BOTTOM  # the wrap connector runs _GAP / 2 below
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")

    top0 = height - _TOP
    previous: tuple[float, float] | None = None  # bottom centre of the last box drawn
    for c, column in enumerate(columns):
        x = _MARGIN + c * (_BOX_W + _COL_GAP)
        top = top0
        for k, i in enumerate(column):
            block, h = blocks[i], heights[i]
            centre = x + _BOX_W / 2
            if previous is not None and k == 0:  # wrap: down, across, up, across, down
                gap_x = x - _COL_GAP / 2
                low = previous[1] - _GAP / 2
                high = top + _GAP / 2
                _arrow(
                    ax,
                    [
                        previous,
                        (previous[0], low),
                        (gap_x, low),
                        (gap_x, high),
                        (centre, high),
                        (centre, top),
                    ],
                )
            elif previous is not None:
                _arrow(ax, [previous, (centre, top)])
            patch = _box(
                ax, x, top - h, _BOX_W, h, _status_color(block.weights, block.trainable_weights)
            )
            patch.set_gid(f"block:{block.name}")
            _draw_header(ax, block, x, top)
            parts = fires[block.name]
            if parts:
                _draw_fire(ax, block, parts, x, top)
            else:
                for n, line in enumerate(_detail_lines(block)):
                    ax.text(
                        x + 0.1, top - 0.3 - n * _LINE, line, ha="left", va="top", fontsize=_FONT
                    )
            previous = (centre, top - h)
            top -= h + _GAP

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    params = sum(int(np.prod(w.shape)) for w in model.weights)
    fig.suptitle(
        f"{title or model.name}\n{params:,} params: {trainable:,} trainable, "
        f"{params - trainable:,} frozen",
        y=1 - 0.1 / height,
        va="top",
        fontsize=10,
    )
    handles = [
        Patch(facecolor=face, edgecolor=edge, label=label)
        for label, (face, edge) in (
            ("trainable", TRAINABLE_COLOR),
            ("frozen", FROZEN_COLOR),
            ("no weights", NO_WEIGHTS_COLOR),
        )
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.05 / height),
        ncol=3,
        frameon=False,
        fontsize=8,
    )
    return fig


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG (120 dpi, tight bounding box) and close it.

    The PNG is written to a temporary file beside ``path`` and moved into place, so ``path``
    never holds half a PNG; missing parent folders are created.

    Returns:
        ``path`` as a ``Path``.
    """
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(
            f"`path` must end in .png: save_figure writes PNG files. Received: path={str(path)!r}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same file system, so os.replace is atomic); "xb"
    # honours the umask, unlike tempfile.mkstemp's 0600.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            fig.savefig(handle, format="png", dpi=SAVE_DPI, bbox_inches="tight")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _close(fig)
    return target


def _close(fig: Figure) -> None:
    """Close ``fig`` if pyplot manages it (figures made by this module are not managed)."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
