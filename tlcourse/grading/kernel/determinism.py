"""In the graded kernel, before the student's first cell: seeded, deterministic TensorFlow.

The grader runs :func:`start` first, so the same submission graded twice computes the same
numbers on the same machine: every seed (Python, numpy, TensorFlow, Keras) is set before any
model is built (a new head's initial weights come from Keras' global seed) and TensorFlow's
ops run their deterministic kernels. What stays nondeterministic across machines (another CPU's
floating-point kernels, another thread count) is said in the instructor page.
"""

from __future__ import annotations


def start(seed: int) -> None:
    """Seed everything and switch TensorFlow to deterministic ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
