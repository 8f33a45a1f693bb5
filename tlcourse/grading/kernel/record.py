"""Plain data from the objects a student's code returns: what a check needs, nothing more.

Each function takes an object (a ``tf.data.Dataset``, a Keras model, a figure, a history, a
config) and returns numbers, arrays and strings, so that the verdict can be computed from data
alone, in another process. A function given the wrong kind of object raises ``AssertionError``
with a message the student can act on (the same message at home and when graded).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np


def array(value, what: str) -> np.ndarray:
    """``value`` as a numeric numpy array (a tensor is converted); ``None`` is a missing return."""
    if value is None:
        raise AssertionError(f"{what} returned None: return the result (did you forget `return`?)")
    if hasattr(value, "numpy"):
        value = value.numpy()
    try:
        result = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{what} must return an array of numbers: {error}") from None
    if result.dtype == object or not (
        np.issubdtype(result.dtype, np.number) or result.dtype == bool
    ):
        raise AssertionError(f"{what} must return an array of numbers, got dtype {result.dtype}.")
    return result


def index_pair(result, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two integer index arrays, as ``split`` must return them."""
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise AssertionError(f"{what} must return two index arrays: (train_idx, val_idx).")
    first, second = (array(part, what) for part in result)
    for part in (first, second):
        if part.ndim != 1 or not (np.issubdtype(part.dtype, np.integer) or part.size == 0):
            raise AssertionError(f"{what} must return 1-D integer index arrays, got {part.dtype}.")
    return first.astype(np.int64), second.astype(np.int64)


def first_batch(dataset) -> tuple[np.ndarray, np.ndarray]:
    """The first ``(images, labels)`` batch of a ``tf.data.Dataset``."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise AssertionError(f"Expected a tf.data.Dataset, got {type(dataset).__name__}.")
    batch = next(iter(dataset), None)
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise AssertionError("The dataset must yield (images, labels) pairs.")
    return array(batch[0], "the dataset's images"), array(batch[1], "the dataset's labels")


def _find_layer(model, name: str):
    """The layer called ``name`` in ``model`` or in a model nested in it (a backbone)."""
    import keras

    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            found = _find_layer(layer, name)
            if found is not None:
                return found
    return None


def _activation(layer) -> str:
    """The name of the activation a layer applies, ``""`` for none (linear)."""
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    activation = getattr(layer, "activation", None)
    if activation is None or isinstance(layer, keras.Model):
        return ""
    name = getattr(activation, "__name__", type(activation).__name__)
    return "" if name == "linear" else str(name)


#: How many layers, from the output back, a model summary describes (the head).
HEAD_DEPTH = 8


def model_summary(model) -> dict[str, np.ndarray]:
    """A Keras model's input and output shapes, its layers with weights, conv1's kernel (found
    in a nested backbone too), its last layers (output first: kind, activation, whether it has
    weights) and its outputs on two fixed random images."""
    import keras

    if not isinstance(model, keras.Model):
        raise AssertionError(f"Expected a keras.Model, got {type(model).__name__}.")
    shape = lambda s: np.asarray([-1 if d is None else int(d) for d in s], np.int64)  # noqa: E731
    summary = {
        "input_shape": shape(model.input_shape),
        "output_shape": shape(model.output_shape),
        **layer_flags(model),
    }
    conv1 = _find_layer(model, "conv1")
    weights = conv1.get_weights() if conv1 is not None else []
    summary["conv1_kernel"] = np.asarray(weights[0]) if weights else np.zeros((0,), np.float32)
    head = list(reversed(model.layers))[:HEAD_DEPTH]
    summary["head_kinds"] = np.asarray([type(layer).__name__ for layer in head], dtype=str)
    summary["head_activations"] = np.asarray([_activation(layer) for layer in head], dtype=str)
    summary["head_weighted"] = np.asarray([bool(layer.weights) for layer in head], dtype=bool)
    sides = tuple(model.input_shape[1:])
    if all(isinstance(d, int) for d in sides):
        x = np.random.default_rng(0).normal(size=(2, *sides)).astype(np.float32)
        summary["outputs"] = array(model(x, training=False), "the model")
    else:
        summary["outputs"] = np.zeros((0, 0), np.float32)
    return summary


def layer_flags(model) -> dict[str, np.ndarray]:
    """Names of the layers with weights, whether each really trains (its weights are among
    ``model.trainable_weights``: in Keras 3 a model whose own ``trainable`` is False trains
    nothing whatever its layers' flags), each layer's own flag and the model's."""
    import keras

    if not isinstance(model, keras.Model):
        raise AssertionError(f"Expected a keras.Model, got {type(model).__name__}.")
    layers = [layer for layer in model.layers if layer.weights]
    trains = {id(weight) for weight in model.trainable_weights}
    return {
        "layers": np.asarray([layer.name for layer in layers], dtype=str),
        "trainable": np.asarray(
            [any(id(w) in trains for w in layer.weights) for layer in layers], dtype=bool
        ),
        "flagged": np.asarray([bool(layer.trainable) for layer in layers], dtype=bool),
        "model_trainable": np.asarray(bool(model.trainable)),
    }


#: The freezings a check of ``apply_freezing`` asks for: (name, experiments applied in turn).
FREEZINGS = (
    ("E1", ("E1",)),
    ("E2", ("E2",)),
    ("E3", ("E3",)),
    ("E3-then-E2", ("E3", "E2")),
    ("E1-then-E3", ("E1", "E3")),
)


def freezing_flags(apply_freezing, build) -> dict[str, np.ndarray]:
    """:func:`layer_flags` of ``build()`` after each of :data:`FREEZINGS` (``name.key``)."""
    found = {}
    for name, experiments in FREEZINGS:
        model = build()
        for experiment in experiments:
            model = apply_freezing(model, experiment)
        found |= {f"{name}.{key}": value for key, value in layer_flags(model).items()}
    return found


def counts(result, what: str) -> np.ndarray:
    """A ``(trainable, frozen)`` pair of integers."""
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise AssertionError(f"{what} must return (trainable, frozen).")
    try:
        return np.asarray([int(part) for part in result], np.int64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} must return two integers, got {result!r}.") from None


def integer(value, what: str) -> np.ndarray:
    """An integer (numpy integers too); anything else is the student's mistake."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise AssertionError(f"{what} must be an integer, got {value!r}.")
    return np.asarray(int(value), np.int64)


def history(value) -> dict[str, np.ndarray]:
    """A Keras history (its ``.history`` dict, or the dict) as float arrays per metric."""
    value = getattr(value, "history", value)
    if not isinstance(value, Mapping):
        raise AssertionError(f"Expected a training history (a dict), got {type(value).__name__}.")
    found = {}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if name in value:
            found[name] = array(list(value[name]), f"history[{name!r}]").astype(float)
    return found


def figure(fig) -> dict[str, np.ndarray]:
    """How many panels a matplotlib figure has and how many lines each draws."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise AssertionError(f"Expected a matplotlib Figure, got {type(fig).__name__}.")
    return {"lines_per_axis": np.asarray([len(ax.lines) for ax in fig.axes], np.int64)}


def config(value) -> dict[str, np.ndarray]:
    """A training config's fields (a dataclass such as ``TrainConfig``) as plain values."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise AssertionError(f"Expected a TrainConfig, got {type(value).__name__}.")
    found = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if isinstance(item, bool | int | float | str) and not (
            isinstance(item, float) and not math.isfinite(item)
        ):
            found[field.name] = np.asarray(item)
    return found


def _loss(model) -> tuple[str, bool]:
    """The loss a model was compiled with, by name, and whether it takes logits."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss, False
    config = {}
    if hasattr(loss, "get_config"):
        try:
            config = dict(loss.get_config())
        except Exception:  # noqa: BLE001 - a student's own loss may not serialise
            config = {}
    name = type(loss).__name__ if hasattr(loss, "get_config") else getattr(loss, "__name__", "")
    return str(name or loss), bool(config.get("from_logits", False))


def recompile_evidence(apply_freezing, weights=None) -> dict[str, np.ndarray]:
    """Train a model once, freeze it with ``apply_freezing``, train again: what changed.

    Keras reads ``trainable`` when it builds the train step, so a model that has trained once
    keeps updating layers frozen afterwards until it is compiled again. The experiment is the
    first of E1, E2 under which ``apply_freezing`` freezes a layer (which layers is the freezing
    test's business); where it freezes none, ``recompiled`` tells whether it compiled again.
    Records each layer with weights (``layers``), whether it trains, the largest change of its
    weights in the second training (``changed``), the compiled loss and any training error.
    """
    import keras

    from tlcourse.models import transfer_model
    from tlcourse.preprocessing import one_hot

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 32, 32, 3)).astype(np.float32)
    y = one_hot(np.arange(16) % 10, 10)
    for experiment in ("E1", "E2"):
        model = transfer_model(classes=10, input_shape=(32, 32, 3), weights=weights or "imagenet")
        model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        returned = apply_freezing(model, experiment)
        model = returned if isinstance(returned, keras.Model) else model
        flags = layer_flags(model)
        if not flags["trainable"].all():
            break
    loss, from_logits = _loss(model)
    found = {
        "layers": flags["layers"],
        "trainable": flags["trainable"],
        "experiment": np.asarray(experiment),
        "compiled": np.asarray(bool(model.compiled)),
        "recompiled": np.asarray(getattr(model, "train_function", None) is None),
        "loss": np.asarray(loss),
        "loss_from_logits": np.asarray(from_logits),
    }
    layers = [layer for layer in model.layers if layer.weights]
    before = [[np.array(w) for w in layer.get_weights()] for layer in layers]
    if model.compiled:
        try:
            model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        except Exception as error:  # noqa: BLE001 - a wrong loss fails here, in any way
            found["fit_error"] = np.asarray(f"{type(error).__name__}: {error}"[:300])
    found["changed"] = np.asarray(
        [
            max(
                (
                    float(np.abs(np.asarray(a) - b).max())
                    for a, b in zip(layer.get_weights(), old, strict=True)
                ),
                default=0.0,
            )
            for layer, old in zip(layers, before, strict=True)
        ],
        np.float64,
    )
    return found
