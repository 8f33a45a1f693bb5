"""Photos streamed from disk as ``tf.data`` batches, resized the way the saved model resizes.

Every image is decoded (``tf.io.decode_image``: JPEG, PNG, GIF's first frame, BMP, WebP), then the
model's own resizing layer (:func:`tlcourse.photos.model.resize_layers`) shrinks its centre square
to ``resize_to`` pixels, which is a resize of the shorter side followed by a centre crop. For
evaluation the centre ``image_size`` square is kept, as the saved model does; for training a
random ``image_size`` square and a random horizontal flip are drawn, from seeds that depend only
on the run's seed, the epoch and the image's place in the batch order (so the same seed gives
the same crops, however many threads decode). Pixels are resized as floats, as in the saved
model. Batches hold float32 pixels in [0, 255]: normalisation is inside the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

#: Bumped whenever decoding, resizing or cropping changes: part of every cached feature's key,
#: so that features computed by older code are never reused.
PREPROCESSING_VERSION = 2

if TYPE_CHECKING:
    import tensorflow as tf

    from tlcourse.photos.folders import ImageFiles


def decode(path: tf.Tensor) -> tf.Tensor:
    """The uint8 RGB pixels ``(H, W, 3)`` of the image file at ``path``."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, (None, None, 3))


def photo_dataset(
    files: ImageFiles,
    *,
    image_size: int,
    resize_to: int,
    batch_size: int,
    training: bool = False,
    seed: int = 0,
    mirror: bool = False,
) -> tf.data.Dataset:
    """Batches ``(float32 (B, image_size, image_size, 3), one-hot float32 (B, C))`` of ``files``.

    Args:
        files: the images and labels (see :class:`~tlcourse.photos.folders.ImageFiles`).
        image_size: side of the square the model sees.
        resize_to: side the centre square is resized to before cropping (>= ``image_size``).
        batch_size: images per batch (the last may be smaller).
        training: shuffle every epoch, crop at random and flip at random. Defaults to False:
            file order, centre crop.
        seed: seed of the shuffle, the crops and the flips. Defaults to 0.
        mirror: centre crops of the horizontally flipped images (cached flips). Defaults to False.
    """
    import keras
    import tensorflow as tf

    from tlcourse.photos.model import resize_layers

    count = len(files)
    crop_square, resize = resize_layers(resize_to)
    margin = resize_to - image_size
    onehot = keras.utils.to_categorical(files.labels, len(files.class_names)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((list(files.paths), onehot))
    if training:
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms)).map(lambda pair, r: (*pair, r))
    else:
        ds = ds.map(lambda path, label: (path, label, tf.constant(0, tf.int64)))

    def load(path, label, random):
        image = tf.cast(decode(path), tf.float32)[tf.newaxis]  # float, as in the saved model
        image = resize(crop_square(image))[0]
        if training:
            seeds = tf.stack([random, tf.constant(7, tf.int64)])
            image = tf.image.stateless_random_crop(image, (image_size, image_size, 3), seeds)
            image = tf.image.stateless_random_flip_left_right(image, seeds + 1)
        else:
            start = margin // 2
            image = image[start : start + image_size, start : start + image_size]
            if mirror:
                image = tf.reverse(image, axis=[1])
        return tf.ensure_shape(image, (image_size, image_size, 3)), label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
