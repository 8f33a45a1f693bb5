"""SqueezeNet 1.1 for Keras, in the style of ``keras.applications``.

Two builders share one feature extractor:

* :func:`squeezenet1_1` mirrors ``keras.applications`` (``include_top``, ``weights``,
  ``input_tensor``, ``input_shape``, ``pooling``, ``classes``, ``classifier_activation``);
* :func:`transfer_model` puts a new classification head for ``classes`` classes on the
  ImageNet backbone, as one flat model whose layers keep their names (``conv1``,
  ``fire2_squeeze`` ... ``fire9_concat``, ``head_dense``), so ``model.get_layer("fire8_squeeze")``
  works and the freezing strategies can address blocks by name.

Inputs are channels-last RGB images preprocessed the way the weights expect:
``tlcourse.preprocessing.normalize(images, "imagenet")`` (scale to [0, 1], then the ImageNet
mean/std per channel; ``imagenet_utils`` calls this ``mode="torch"``). Only
``channels_last`` is supported. Max pools follow torchvision's ``ceil_mode=True`` for every
input size (a zero pad before a pool over ReLU outputs changes no maximum).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np
from keras import layers

from tlcourse.architecture import (
    CONV1_FILTERS,
    FIRES,
    IMAGENET_CLASSES,
    POOL_AFTER,
    keras_to_torch_prefix,
)
from tlcourse.config import IMAGENET_MEAN, IMAGENET_STD

#: The smallest input side for which every pool still has a 1x1 output.
MIN_INPUT_SIZE = 32
DEFAULT_INPUT_SHAPE = (224, 224, 3)
HEAD_LAYERS: tuple[str, ...] = ("head_pool", "head_dropout", "head_dense", "predictions")
#: The last backbone layer: everything after it is the classification head.
FEATURES_LAYER = "fire9_concat"


def _check_weights(weights) -> None:
    if weights is None or weights == "imagenet":
        return
    if not isinstance(weights, str | os.PathLike) or not os.path.exists(weights):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), "
            "'imagenet' (pre-training on ImageNet, found through TLCOURSE_WEIGHTS, the cache "
            "or a download), or the path to a weights file (.npz in torchvision layout or "
            f"torchvision's .pth). Received: weights={weights!r}"
        )


def _check_input_shape(input_shape, input_tensor) -> tuple[int, int, int]:
    if input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return DEFAULT_INPUT_SHAPE
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            "`input_shape` must be (height, width, 3): channels-last RGB is the only layout "
            f"SqueezeNet 1.1 supports here. Received: input_shape={input_shape}"
        )
    height, width = input_shape[:2]
    if height is None or width is None or min(height, width) < MIN_INPUT_SIZE:
        raise ValueError(
            f"`input_shape` needs a fixed height and width of at least {MIN_INPUT_SIZE} pixels "
            "(three 3x3/2 pools shrink 32 px to a 1x1 map); resize smaller images first. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


def _pool(x, name: str):
    """3x3/2 max pool with torchvision's ``ceil_mode=True``: pad one row/column when needed."""
    height, width = x.shape[1], x.shape[2]
    pad_h, pad_w = (height - 3) % 2, (width - 3) % 2
    if pad_h or pad_w:
        x = layers.ZeroPadding2D(((0, pad_h), (0, pad_w)), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)


def _fire(x, fire):
    squeeze = layers.Conv2D(fire.squeeze, 1, activation="relu", name=f"{fire.name}_squeeze")(x)
    left = layers.Conv2D(fire.expand1x1, 1, activation="relu", name=f"{fire.name}_expand1x1")(
        squeeze
    )
    right = layers.Conv2D(
        fire.expand3x3, 3, padding="same", activation="relu", name=f"{fire.name}_expand3x3"
    )(squeeze)
    return layers.Concatenate(axis=-1, name=f"{fire.name}_concat")([left, right])


def _features(inputs):
    """conv1 -> pool1 -> fire2..fire9 with pools after fire3 and fire5."""
    x = layers.Conv2D(CONV1_FILTERS, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = _pool(x, POOL_AFTER["conv1"])
    for fire in FIRES:
        x = _fire(x, fire)
        if fire.name in POOL_AFTER:
            x = _pool(x, POOL_AFTER[fire.name])
    return x


def _inputs(input_tensor, input_shape):
    if input_tensor is None:
        return layers.Input(shape=input_shape, name="image")
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape, name="image")
    return input_tensor


def squeezenet1_1(
    include_top: bool = True,
    weights: str | os.PathLike | None = "imagenet",
    input_tensor=None,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classes: int = IMAGENET_CLASSES,
    classifier_activation: str | None = "softmax",
    name: str = "squeezenet1_1",
) -> keras.Model:
    """Instantiate SqueezeNet 1.1 (Iandola et al., 2016; torchvision's variant).

    Args:
        include_top: whether to include the 1x1-convolution classifier (``conv10``) and the
            global average pool. Defaults to ``True``.
        weights: ``None`` (random initialization), ``"imagenet"`` (torchvision's ImageNet
            weights, located by :func:`tlcourse.weights.locate_weights`), or the path to a
            weights file. Defaults to ``"imagenet"``.
        input_tensor: optional Keras tensor to use as image input.
        input_shape: ``(height, width, 3)``, each side at least 32. Defaults to
            ``(224, 224, 3)``.
        pooling: with ``include_top=False``: ``None`` (4-D feature map), ``"avg"`` or
            ``"max"`` (global pooling to a vector).
        classes: number of classes; must be 1000 with ``weights="imagenet"`` and
            ``include_top=True``. Defaults to 1000.
        classifier_activation: activation of the top layer, ``None`` to return logits.
            Defaults to ``"softmax"``.
        name: the model's name.

    Returns:
        A ``keras.Model``. Inputs must be preprocessed with
        ``tlcourse.preprocessing.normalize(x, "imagenet")``.
    """
    _check_weights(weights)
    if weights is not None and include_top and classes != IMAGENET_CLASSES:
        raise ValueError(
            "If using `weights` with `include_top=True`, `classes` should be 1000; for a new "
            "task use `include_top=False` or `tlcourse.models.transfer_model(classes=...)`. "
            f"Received: classes={classes}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    input_shape = _check_input_shape(input_shape, input_tensor)
    inputs = _inputs(input_tensor, input_shape)
    x = _features(inputs)
    if include_top:
        # torchvision's classifier: dropout, 1x1 conv, ReLU, global average pool.
        x = layers.Dropout(0.5, name="drop9")(x)
        x = layers.Conv2D(classes, 1, activation="relu", name="conv10")(x)
        x = layers.GlobalAveragePooling2D(name="pool10")(x)
        if classifier_activation is not None:
            x = layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_torchvision_weights(model, _state_dict(weights))
    return model


def transfer_model(
    classes: int = 10,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    weights: str | os.PathLike | None = "imagenet",
    dropout: float = 0.5,
    name: str = "squeezenet1_1_transfer",
    include_preprocessing: bool = False,
) -> keras.Model:
    """SqueezeNet 1.1 features with a new head for ``classes`` classes, as one flat model.

    The head is global average pooling, dropout and a dense layer with softmax: SqueezeNet's
    own classifier (dropout, 1x1 convolution, pool) with the pool first, which computes the
    same function but lets a frozen backbone's pooled features be cached (512 numbers an
    image at any resolution). It has **no ReLU in front of the softmax**: the common Keras
    port keeps SqueezeNet's ReLU there, and once every logit is driven below zero it outputs
    uniform probabilities, a loss stuck at ln(classes) and a gradient of zero: the run can
    never recover. The new layer starts like torchvision's classifier (normal, std 0.01; zero
    bias), so the first steps give small, near-uniform probabilities instead of large random
    logits.

    Args:
        classes: number of target classes (at least 2). Defaults to 10.
        input_shape: ``(height, width, 3)``, each side at least 32. Defaults to ``(32, 32, 3)``.
        weights: as in :func:`squeezenet1_1`; only the backbone's weights are loaded.
        dropout: dropout rate in front of the new classifier, in [0, 1). Defaults to 0.5.
        name: the model's name.
        include_preprocessing: whether the model normalises its input itself, as in
            ``keras.applications`` (EfficientNet, ConvNeXt): then it takes float pixels in
            [0, 255] and starts with ``Rescaling(1/255)`` and the ImageNet ``Normalization``.
            Defaults to False: inputs normalised with
            ``tlcourse.preprocessing.normalize(x, "imagenet")``.
    """
    _check_weights(weights)
    if not isinstance(classes, int) or classes < 2:
        raise ValueError(f"`classes` must be an integer >= 2. Received: classes={classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must lie in [0, 1). Received: dropout={dropout}")
    input_shape = _check_input_shape(input_shape, None)
    inputs = layers.Input(shape=input_shape, name="image")
    x = inputs
    if include_preprocessing:
        x = layers.Rescaling(1 / 255, name="scale")(x)
        x = layers.Normalization(
            mean=IMAGENET_MEAN, variance=np.square(IMAGENET_STD), name="imagenet_normalisation"
        )(x)
    x = _features(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(
        classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="head_dense"
    )(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_torchvision_weights(model, _state_dict(weights))
    return model


def _state_dict(weights) -> dict[str, np.ndarray]:
    from tlcourse.weights import load_state_dict

    return load_state_dict(None if weights == "imagenet" else weights)


def load_torchvision_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """Copy torchvision ``squeezenet1_1`` tensors into ``model``, matched by layer name.

    Each Keras convolution ``conv1``, ``fire{n}_{squeeze,expand1x1,expand3x3}`` and (when the
    model has it) ``conv10`` takes ``<prefix>.weight`` transposed from OIHW to HWIO and
    ``<prefix>.bias``. Layers of the model that are not in that table (a new head) are left
    as initialised. Returns the names of the layers that were loaded.
    """
    loaded = []
    for layer_name, prefix in keras_to_torch_prefix().items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            continue
        kernel = np.asarray(state_dict[f"{prefix}.weight"]).transpose(2, 3, 1, 0)
        bias = np.asarray(state_dict[f"{prefix}.bias"])
        expected = tuple(layer.kernel.shape)
        if kernel.shape != expected:
            raise ValueError(
                f"Layer {layer_name!r} expects a kernel of shape {expected} (HWIO) but "
                f"{prefix}.weight gives {kernel.shape}; the weights do not fit this model."
            )
        layer.set_weights([kernel, bias])
        loaded.append(layer_name)
    return loaded
