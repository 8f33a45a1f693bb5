"""tlcourse: a course kit for transfer learning with TensorFlow/Keras.

Modules: ``data`` (finding and loading CIFAR-10, over ``cifar10_python``, ``image_folder``
and ``archives``; ``ImageSet`` in ``imageset``), ``pipeline`` (splits and ``tf.data``),
``models`` (SqueezeNet 1.1), ``weights`` (ImageNet weights files), ``freeze`` (freezing
strategies), ``train``, ``evaluate``, ``plots``, ``reproduce`` (the study), ``report`` and
``cli``.
"""

import os

# TensorFlow's C++ start-up chatter hides the messages that matter to students.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
