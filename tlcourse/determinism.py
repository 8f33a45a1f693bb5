"""Seeded, deterministic TensorFlow: the same run twice on the same machine, the same numbers.

:func:`seed_everything` sets every seed (Python, numpy, TensorFlow, Keras) before any model is
built (a new head's initial weights come from Keras' global seed) and switches TensorFlow to its
deterministic kernels (``tf.data`` keeps its order too). What stays nondeterministic: another
machine's floating-point kernels (another CPU, another thread count, a GPU) give other last digits,
which training can grow into other accuracies.

Used by ``tlcourse train`` (:mod:`tlcourse.photos`) and the graded kernels. ``tlcourse reproduce``
only sets the seeds (``keras.utils.set_random_seed``): on CPU that already repeats its runs, and
deterministic kernels would change the last digits of the study's recorded runs.
"""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    """Seed Python, numpy, TensorFlow and Keras with ``seed``; use deterministic TF ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
