"""From images in memory to training: seeded splits and batched ``tf.data`` pipelines.

:func:`stratified_split` and :func:`take_per_class` choose indices; :func:`make_dataset` turns
uint8 images and integer labels into normalised float batches with one-hot labels, resized and
augmented on the way. Pixel scaling happens here, once, through
:func:`tlcourse.preprocessing.normalize`. TensorFlow and scikit-learn are imported when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tlcourse.preprocessing import check_labels, check_normalization, normalize, one_hot

if TYPE_CHECKING:
    import tensorflow as tf

#: Smallest side SqueezeNet 1.1 accepts: its stride-2 stem and three 3x3 stride-2 max pools
#: ("valid") need at least 31 pixels, so 32 is the smallest size worth asking for.
MIN_IMAGE_SIZE = 32


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and validation, keeping each class's share in both.

    Args:
        labels: 1-D integer labels.
        val_fraction: share of each class that goes to validation, in (0, 1). Defaults to 0.2.
        seed: random seed; the same seed gives the same split. Defaults to 0.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 indices into ``labels``, disjoint, covering all.
    """
    from sklearn.model_selection import train_test_split

    labels = check_labels(labels)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(
            "`val_fraction` must lie strictly between 0 and 1. "
            f"Received: val_fraction={val_fraction}"
        )
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(labels)), test_size=val_fraction, stratify=labels, random_state=seed
        )
    except ValueError as err:
        raise ValueError(
            f"Cannot split {len(labels)} labels with val_fraction={val_fraction}: {err} "
            "Every class needs at least 2 images and one in each part."
        ) from err
    return np.sort(train_idx).astype(np.int64), np.sort(val_idx).astype(np.int64)


def take_per_class(labels: np.ndarray, per_class: int, *, seed: int = 0) -> np.ndarray:
    """Pick ``per_class`` indices of each class at random (seeded); return them sorted.

    Raises:
        ValueError: a class has fewer than ``per_class`` examples.
    """
    labels = check_labels(labels)
    if not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(
            f"`per_class` must be a positive integer. Received: per_class={per_class!r}"
        )
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < per_class:
            raise ValueError(
                f"Class {cls} has only {len(members)} examples, fewer than per_class={per_class}. "
                f"Ask for at most {len(members)} per class. Received: per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


def _augment_batch(x: tf.Tensor, random: tf.Tensor, pad: int) -> tf.Tensor:
    """Random horizontal flip and translation by up to ``pad`` pixels, per image (zero fill)."""
    import tensorflow as tf

    batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    flip = tf.random.stateless_uniform((batch, 1, 1, 1), seed=tf.stack([random, 1]))
    x = tf.where(flip < 0.5, tf.reverse(x, axis=[2]), x)
    shift = tf.random.stateless_uniform(
        (batch, 2), seed=tf.stack([random, 2]), minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    rows = shift[:, :1] + tf.range(height)[tf.newaxis, :]
    cols = shift[:, 1:] + tf.range(width)[tf.newaxis, :]
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    batch_size: int = 32,
    normalization: str = "imagenet",
    image_size: int | None = None,
    augment: bool = False,
    shuffle: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Make a batched ``tf.data`` pipeline of normalised images and one-hot labels.

    Each batch is gathered first, then, as a whole: cast to float32, augmented (at the source
    size, so a 4-pixel shift at 32 becomes a 28-pixel shift at 224), resized (bilinear, only
    when ``image_size`` differs from the images' size) and normalised.

    Args:
        images: uint8 array ``(N, H, W, 3)``, RGB (an ``ImageSet.images``).
        labels: integer array ``(N,)`` of class ids in ``[0, num_classes)``.
        num_classes: width of the one-hot labels.
        batch_size: images per batch (the last batch may be smaller). Defaults to 32.
        normalization: ``"imagenet"`` (what the SqueezeNet weights expect) or ``"unit"``
            (divide by 255, as the study did); see ``tlcourse.preprocessing``. Defaults to
            ``"imagenet"``.
        image_size: side of the square images the model gets, at least 32 (SqueezeNet 1.1's
            stem and three stride-2 max pools need 31 pixels). Defaults to None (keep size).
        augment: random horizontal flip and translation by up to 4 pixels per 32 pixels of
            side (zero fill), a new draw per image and epoch; for training only. Defaults to
            False.
        shuffle: reshuffle the images every epoch. Defaults to False.
        seed: seed of the shuffle and the augmentation. Defaults to 0.

    Returns:
        A dataset of ``(float32 (B, S, S, 3), float32 (B, num_classes))`` batches, prefetched.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise ValueError(
            "`images` must be uint8 pixels of shape (N, H, W, 3) with N >= 1, as ImageSet.images "
            "holds them (normalisation happens here). "
            f"Received: images.shape={images.shape}, "
            f"images.dtype={images.dtype}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"`labels` must be 1-D with one label per image ({len(images)}). "
            f"Received: labels.shape={labels.shape}"
        )
    if not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}"
        )
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    if image_size is not None and (
        not isinstance(image_size, int | np.integer) or image_size < MIN_IMAGE_SIZE
    ):
        raise ValueError(
            f"`image_size` must be None or an integer >= {MIN_IMAGE_SIZE}: SqueezeNet 1.1's "
            "stride-2 stem and three 3x3 stride-2 max pools need at least 31 pixels a side. "
            f"Received: image_size={image_size!r}"
        )
    check_normalization(normalization)
    targets = one_hot(labels, num_classes)

    import tensorflow as tf

    height, width = images.shape[1:3]
    out_h, out_w = (height, width) if image_size is None else (image_size, image_size)
    resize = (out_h, out_w) != (height, width)
    pad = max(1, round(4 * height / 32))
    pixels = tf.constant(images)
    onehot = tf.constant(targets)

    def transform(index: tf.Tensor, random: tf.Tensor | None = None):
        x = tf.cast(tf.gather(pixels, index), tf.float32)
        if random is not None:  # at the source size: the same shift, far cheaper than at 224
            x = _augment_batch(x, random, pad)
        if resize:
            x = tf.image.resize(x, (out_h, out_w), method="bilinear")
        x = normalize(x, normalization)
        x = tf.ensure_shape(x, (None, out_h, out_w, 3))
        return x, tf.gather(onehot, index)

    ds = tf.data.Dataset.range(len(images))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms))
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
