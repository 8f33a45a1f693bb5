"""Your own photos: train, evaluate, predict with and export a transfer-learning classifier.

The same in Python as on the command line (``tlcourse train``, ``predict``, ``export``)::

    from tlcourse import photos

    result = photos.train("flowers/")          # train/ and val/, one folder per class
    result.model.save("flowers.keras")          # uint8 pixels of any size in, class names kept
    for prediction in photos.predict("flowers.keras", ["rose.jpg"]):
        print(prediction.line())                # "rose.jpg: <class> <probability>, ..."
    photos.export("flowers.keras", "tflite")     # checked against the .keras model

Modules, one job each: :mod:`~tlcourse.photos.folders` (find and check the files),
:mod:`~tlcourse.photos.pipeline` (stream them with ``tf.data``), :mod:`~tlcourse.photos.model`
(the network and the saved model), :mod:`~tlcourse.photos.recipe` (the two training stages),
:mod:`~tlcourse.photos.record` (the run's record and figures), :mod:`~tlcourse.photos.predict`
and :mod:`~tlcourse.photos.export`.
"""

import importlib

#: Where each public name lives; imported on first use, so that ``tlcourse.photos.cli`` (and
#: ``tlcourse --help``) load neither Keras nor TensorFlow.
_HOMES = {
    "ImageFiles": "folders",
    "PhotoFolder": "folders",
    "open_folder": "folders",
    "PhotoConfig": "recipe",
    "PhotoResult": "recipe",
    "train": "recipe",
    "load": "model",
    "Prediction": "predict",
    "predict": "predict",
    "export": "export",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
