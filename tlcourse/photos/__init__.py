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

from tlcourse.photos.export import export
from tlcourse.photos.folders import ImageFiles, PhotoFolder, open_folder
from tlcourse.photos.model import load
from tlcourse.photos.predict import Prediction, predict
from tlcourse.photos.recipe import PhotoConfig, PhotoResult, train

__all__ = [
    "ImageFiles",
    "PhotoConfig",
    "PhotoFolder",
    "PhotoResult",
    "Prediction",
    "export",
    "load",
    "open_folder",
    "predict",
    "train",
]
