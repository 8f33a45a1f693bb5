"""The photo classifier: SqueezeNet 1.1 and a new head, and the model a user keeps.

Two models share every layer that has weights:

* the **network** trains: :func:`tlcourse.models.transfer_model` with
  ``include_preprocessing=True`` (float pixels in [0, 255] of ``image_size`` squares, ImageNet
  normalisation inside);
* the **saved model** (``.keras``) takes raw uint8 pixels of any size, resizes its centre square
  to ``resize_to`` and crops the centre ``image_size`` (:func:`resize_layers`, ``CenterCrop``:
  the evaluation pipeline's own steps), runs the network and passes the probabilities through
  :class:`ClassNames`, which carries the class names in the file.

Loading the ``.keras`` file needs tlcourse installed (``ClassNames`` is registered with Keras
when ``tlcourse.photos`` is imported); the exported SavedModel and TFLite files do not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from tlcourse.errors import DataFormatError
from tlcourse.models import transfer_model

#: Name of the saved model's input and of the layer carrying the class names.
INPUT_NAME = "pixels"
CLASS_NAMES_LAYER = "class_names"
NETWORK_NAME = "network"


@keras.saving.register_keras_serializable(package="tlcourse")
class ClassNames(keras.layers.Layer):
    """Identity on the probabilities; its config holds the class name of each output."""

    def __init__(self, class_names: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_names = tuple(str(name) for name in class_names)

    def call(self, probabilities):
        return probabilities

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "class_names": list(self.class_names)}


@keras.saving.register_keras_serializable(package="tlcourse")
class CentreSquare(keras.layers.Layer):
    """The largest centred square of each image (batch, height, width, channels).

    Written here because ``keras.layers.Resizing(crop_to_aspect_ratio=True)`` crops square
    images wrongly when the image size is unknown at trace time (inside ``tf.data`` and in an
    exported SavedModel; Keras 3.15): a square 256 px image resized to 110 px came out up to 66
    grey levels away from ``tf.image.resize``.
    """

    def call(self, images):
        from keras import ops

        height, width = ops.shape(images)[1], ops.shape(images)[2]
        side = ops.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return images[:, top : top + side, left : left + side, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])


def resize_layers(resize_to: int) -> list[keras.layers.Layer]:
    """Resize an image's centre square to ``resize_to`` pixels (shorter side, then crop).

    Bilinear without antialiasing, as ``keras.utils.image_dataset_from_directory`` resizes:
    the antialiased kernel (``ScaleAndTranslate``) is not a TFLite operation, and the exported
    TFLite file must compute what the ``.keras`` model computes.
    """
    return [
        CentreSquare(name="centre_square"),
        keras.layers.Resizing(resize_to, resize_to, name="resize"),
    ]


def build_network(classes: int, *, image_size: int, weights, dropout: float) -> keras.Model:
    """Pixels in [0, 255] -> ImageNet normalisation -> SqueezeNet 1.1 -> a new softmax head."""
    return transfer_model(
        classes=classes,
        input_shape=(image_size, image_size, 3),
        weights=weights,
        dropout=dropout,
        include_preprocessing=True,
        name=NETWORK_NAME,
    )


def saved_model(network: keras.Model, class_names: Sequence[str], *, resize_to: int) -> keras.Model:
    """The model to keep: raw uint8 pixels of any size in, probabilities per class out."""
    image_size = network.input.shape[1]
    pixels = keras.Input((None, None, 3), dtype="uint8", name=INPUT_NAME)
    # Resize float pixels: Keras' Resizing rounds uint8 results when called eagerly and not
    # inside tf.data, so uint8 in would make predictions differ from the evaluation pipeline's.
    x = keras.layers.Rescaling(1.0, name="to_float")(pixels)
    for layer in resize_layers(resize_to):
        x = layer(x)
    x = keras.layers.CenterCrop(image_size, image_size, name="centre_crop")(x)
    # training=False: the saved model always predicts (a SavedModel export would otherwise
    # keep the head's dropout on behind Keras' preprocessing layers).
    probabilities = network(x, training=False)
    outputs = ClassNames(class_names, name=CLASS_NAMES_LAYER)(probabilities)
    return keras.Model(pixels, outputs, name="photo_classifier")


def load(path: str | os.PathLike) -> keras.Model:
    """Load a model saved by ``tlcourse train``, checking that it is one."""
    from pathlib import Path

    path = Path(path).expanduser()
    if not path.is_file() or path.suffix != ".keras":
        raise DataFormatError(
            f"{path} is not a .keras file. Give the model.keras that `tlcourse train` wrote "
            "in its output folder."
        )
    try:
        model = keras.saving.load_model(path)
    except Exception as err:  # zip, h5 or config errors: Keras raises many kinds
        raise DataFormatError(
            f"{path} could not be loaded as a Keras model ({type(err).__name__}: {err}). "
            "Give a model.keras written by `tlcourse train`."
        ) from err
    class_names_of(model, where=str(path))
    return model


def class_names_of(model: keras.Model, *, where: str = "the model") -> tuple[str, ...]:
    """The class name of each output of a saved model."""
    try:
        return model.get_layer(CLASS_NAMES_LAYER).class_names
    except (ValueError, AttributeError):
        raise DataFormatError(
            f"{where} carries no class names: it was not written by `tlcourse train`. "
            "Train one with `tlcourse train DATA`."
        ) from None


def network_of(model: keras.Model) -> keras.Model:
    """The network (fixed-size float input) inside a saved model."""
    return model.get_layer(NETWORK_NAME)
