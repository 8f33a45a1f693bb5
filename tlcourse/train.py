"""Compile and fit a transfer model from one config object.

:func:`fit` applies the freezing strategy, compiles, and trains with a progress bar,
per-epoch history written as JSON, and checkpoints from which an interrupted run resumes
(``keras.callbacks.BackupAndRestore``). When the lower layers are frozen (E1, E2) and no
augmentation is asked for, their output is computed once and only the layers that train
run each epoch: the same result, many times faster. Without augmentation, E3's images are
also normalised and resized once, not once an epoch. A run whose loss sticks at ln(classes) with
accuracy at chance is stopped and flagged as collapsed rather than reported as a result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from tlcourse import files
from tlcourse import freeze as freezing
from tlcourse.feature_store import FeatureStore
from tlcourse.imageset import ImageSet
from tlcourse.models import FEATURES_LAYER
from tlcourse.pipeline import make_dataset
from tlcourse.preprocessing import check_normalization

OPTIMIZERS = ("adam", "sgd")
#: ``constant``: the learning rate as given (the study); ``cosine``: from the given rate down to
#: zero over the run along a half cosine, after ``warmup_epochs`` of linear warm-up.
SCHEDULES = ("constant", "cosine")
#: Precomputed inputs (features or preprocessed images) larger than this are not kept in
#: memory; each batch is then preprocessed as it is drawn.
PRECOMPUTE_LIMIT_BYTES = 4 * 2**30
#: Validation images used to look for dead ReLUs in fire9.
PROBE_SIZE = 256
#: Batches per call into TensorFlow when training on cached features (tiny steps).
CACHED_STEPS_PER_EXECUTION = 32


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Defaults are the study's protocol."""

    experiment: str = "E3"
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    image_size: int = 32
    normalization: str = "unit"
    augment: bool = False
    #: E1/E2 only: random horizontal flips from cached features of the mirrored images.
    flip_cache: bool = False
    dropout: float = 0.5
    label_smoothing: float = 0.0
    clipnorm: float | None = None
    seed: int = 0
    cache_features: bool = True

    def __post_init__(self) -> None:
        freezing.trainable_blocks(self.experiment)
        check_normalization(self.normalization)
        for name in ("epochs", "batch_size", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if self.image_size < 32:
            raise ValueError(
                "`image_size` must be at least 32 (SqueezeNet's pools need it). "
                f"Received: image_size={self.image_size}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}. Received: schedule={self.schedule!r}"
            )
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                "`warmup_epochs` must lie in [0, epochs) so that some training follows the "
                f"warm-up. Received: warmup_epochs={self.warmup_epochs}, epochs={self.epochs}"
            )
        if self.warmup_epochs and self.schedule == "constant":
            raise ValueError(
                "`warmup_epochs` needs `schedule='cosine'` (the constant schedule has no "
                "warm-up). Received: schedule='constant', "
                f"warmup_epochs={self.warmup_epochs}"
            )
        if self.flip_cache and (self.augment or not self.uses_feature_cache):
            raise ValueError(
                "`flip_cache=True` flips cached features of a frozen backbone: it needs "
                "`experiment` 'E1' or 'E2', `cache_features=True` and `augment=False` (use "
                "`augment=True` to flip and shift images when conv1 trains). Received: "
                f"experiment={self.experiment!r}, cache_features={self.cache_features}, "
                f"augment={self.augment}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                f"`label_smoothing` must lie in [0, 1). Received: {self.label_smoothing}"
            )

    @property
    def uses_flip_cache(self) -> bool:
        """Whether random horizontal flips come from cached features of mirrored images."""
        return self.flip_cache and self.uses_feature_cache

    @property
    def strategy(self) -> str:
        return freezing.EXPERIMENTS.get(self.experiment, self.experiment)

    @property
    def uses_feature_cache(self) -> bool:
        """Whether the frozen layers' output is computed once and reused every epoch.

        Exact when nothing random happens before the trained layers (no augmentation; the
        only dropout is in the head); impossible when conv1 trains.
        """
        first = freezing.trainable_blocks(self.experiment)[0]
        return self.cache_features and not self.augment and first != "conv1"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class TrainResult:
    """What :func:`fit` returns: per-epoch history and how the run went."""

    config: TrainConfig
    history: dict[str, list[float]]
    freeze: freezing.FreezeSummary
    wall_time_s: float
    #: CPU seconds of this process over all its threads (wall time x cores when they are busy).
    cpu_time_s: float
    images_per_second: float
    collapsed: bool = False
    collapse_epoch: int | None = None
    notes: list[str] = field(default_factory=list)
    #: Share of fire9's channels that are zero for every probe image after training.
    dead_channels: float = 0.0
    #: :meth:`ImageSet.digests` of the training images: which images this run trained on.
    trained_on: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64), repr=False)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """The learning rate, or a Keras schedule of it over ``config.epochs`` epochs."""
    if config.schedule == "constant":
        return config.learning_rate
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup
    )


def make_optimizer(config: TrainConfig, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    kwargs = {"learning_rate": learning_rate_schedule(config, steps_per_epoch)}
    if config.clipnorm is not None:
        kwargs["clipnorm"] = config.clipnorm
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=0.9, nesterov=True, **kwargs)
    return keras.optimizers.Adam(**kwargs)


def compile_model(
    model: keras.Model,
    config: TrainConfig,
    *,
    steps_per_execution: int = 1,
    steps_per_epoch: int = 1,
) -> None:
    """Compile with the config's optimizer, categorical cross-entropy and accuracy.

    XLA is off on CPU-only machines (it made training slower there) and on elsewhere.
    ``steps_per_execution`` > 1 runs several batches per call into TensorFlow, which pays
    when a step is tiny (training on cached features). ``steps_per_epoch`` sizes a learning
    rate schedule.
    """
    import tensorflow as tf

    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=bool(tf.config.list_physical_devices("GPU")),
        steps_per_execution=steps_per_execution,
    )


def is_collapsed(loss: float, accuracy: float, num_classes: int) -> bool:
    """True when a model predicts (close to) uniform probabilities: loss ~ ln(C), chance accuracy.

    A run that is merely slow has a loss that moves away from ln(C); a collapsed one (every
    unit in front of the head dead, or a ReLU zeroing every logit) cannot move at all.
    """
    return abs(loss - math.log(num_classes)) < 0.01 and accuracy < 1.5 / num_classes


def dead_channel_fraction(model: keras.Model, images) -> float:
    """Share of ``fire9_concat``'s channels that are zero for every one of ``images``.

    A channel that is zero for every input is a dead ReLU: no gradient flows through it, so
    it stays dead. ``model`` is a full SqueezeNet (images in), ``images`` preprocessed.
    """
    features = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    outputs = features.predict(images, batch_size=256, verbose=0)
    return float((outputs.reshape(-1, outputs.shape[-1]).max(axis=0) <= 0).mean())


class CollapseMonitor(keras.callbacks.Callback):
    """Flag a run whose training loss sits at ln(C) with chance accuracy.

    In such an epoch the monitor looks at fire9 of ``full_model`` (which shares its layers
    with the model being trained) on the ``probe`` images: when every channel is dead,
    nothing below the head can get a gradient again and the run cannot recover, so it stops
    at once. Without that proof it lets the run go on (a stuck run can still move);
    a run whose last epoch is still stuck is flagged when training ends.
    """

    def __init__(self, num_classes: int, full_model=None, probe=None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.full_model = full_model
        self.probe = probe
        self.first_stuck_epoch: int | None = None
        self.collapse_epoch: int | None = None
        self.dead_fraction: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if not is_collapsed(logs.get("loss", 0.0), logs.get("accuracy", 1.0), self.num_classes):
            self.first_stuck_epoch = None
            return
        if self.first_stuck_epoch is None:
            self.first_stuck_epoch = epoch + 1
        if self.full_model is not None:
            self.dead_fraction = dead_channel_fraction(self.full_model, self.probe)
        if self.dead_fraction == 1.0:
            self.collapse_epoch = self.first_stuck_epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.collapse_epoch is None and self.first_stuck_epoch is not None:
            self.collapse_epoch = self.first_stuck_epoch


class JSONHistory(keras.callbacks.Callback):
    """Write every epoch's metrics to a JSON file, keeping earlier epochs across a resume."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.epochs: dict[int, dict[str, float]] = {}
        if self.path.exists():
            stored = json.loads(self.path.read_text())
            self.epochs = {int(k): v for k, v in stored.items()}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        self.epochs = {k: v for k, v in self.epochs.items() if k <= epoch}
        write_json_atomic(self.path, self.epochs)

    def history(self) -> dict[str, list[float]]:
        keys = sorted({k for logs in self.epochs.values() for k in logs})
        ordered = [self.epochs[e] for e in sorted(self.epochs)]
        return {k: [logs[k] for logs in ordered if k in logs] for k in keys}


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as JSON (sorted keys) to ``path`` atomically."""
    return files.write_json_atomic(path, obj, sort_keys=True)


def _first_trainable_layer(strategy: str) -> str:
    """The layer in front of which nothing trains or draws random numbers."""
    block = freezing.trainable_blocks(strategy)[0]
    return {"head": "head_dropout", "conv1": "conv1"}.get(block, f"{block}_squeeze")


def split_at_frozen(model: keras.Model, strategy: str) -> tuple[keras.Model, keras.Model]:
    """Cut ``model`` where ``strategy`` starts training: (frozen part, trained part).

    The two parts share ``model``'s layers.

    For E1 the cut is after the head's pooling (512 features an image); for E2 in front of
    fire8. The trained part's layers are the model's own, so training it trains ``model``.
    """
    boundary = model.get_layer(_first_trainable_layer(strategy)).input
    return (
        keras.Model(model.input, boundary, name="frozen_part"),
        keras.Model(boundary, model.output, name="trained_part"),
    )


def preprocessed(images: np.ndarray, config: TrainConfig):
    """A dataset of ``images`` as the model sees them (normalised, resized), in batches of 128."""
    dataset = make_dataset(
        images,
        np.zeros(len(images), np.int64),
        num_classes=1,
        batch_size=128,
        normalization=config.normalization,
        image_size=config.image_size,
    )
    return dataset.map(lambda x, y: x)


def extract_features(frozen: keras.Model, images: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The frozen part's output for ``images``, computed once."""
    return frozen.predict(preprocessed(images, config), verbose=0)


#: Batch size for validation passes over precomputed inputs (changes no metric, only speed).
CACHED_EVAL_BATCH_SIZE = 1024


def feature_dataset(
    features, labels, num_classes, *, batch_size: int, shuffle_seed=None, mirrored=None
):
    """Batches of precomputed inputs: (shuffled) indices gathered from tensors in memory.

    With ``mirrored`` (the same inputs computed from horizontally flipped images), each image
    is drawn flipped or not with probability 1/2, anew every epoch: a random flip, exactly.
    """
    import tensorflow as tf

    count = len(labels)
    if mirrored is not None:
        features = np.concatenate([features, mirrored])
    features = tf.constant(features)
    onehot = tf.constant(keras.utils.to_categorical(labels, num_classes).astype("float32"))
    ds = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        ds = ds.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if mirrored is None:
        ds = ds.map(lambda i: (tf.gather(features, i), tf.gather(onehot, i)))
    else:
        randoms = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)

        def pick(i, random):
            flip = tf.random.stateless_uniform(tf.shape(i), seed=tf.stack([random, 3])) < 0.5
            return tf.gather(features, tf.where(flip, i + count, i)), tf.gather(onehot, i)

        ds = tf.data.Dataset.zip((ds, randoms)).map(pick)
    return ds.prefetch(tf.data.AUTOTUNE)


def _features(frozen: keras.Model, images: np.ndarray, config: TrainConfig, store):
    """The frozen part's output for ``images``: from ``store`` when it has them, else computed."""
    if store is None:
        return extract_features(frozen, images, config)
    settings = {
        "image_size": config.image_size,
        "normalization": config.normalization,
        "layers": [layer.name for layer in frozen.layers],
        "output_shape": list(frozen.output.shape[1:]),
    }
    return store.load_or_compute(
        settings,
        [np.asarray(w) for w in frozen.get_weights()],
        images,
        lambda x: extract_features(frozen, x, config),
    )


def _training_data(
    model, train: ImageSet, val: ImageSet, config: TrainConfig, notes: list, store=None
):
    """The model to fit, its training and validation datasets, and its steps per execution.

    Computed once when nothing random happens before it: the frozen part's output (E1, E2),
    or else the preprocessed images themselves (E3 without augmentation). With ``store`` (a
    :class:`FeatureStore`), the frozen part's output is also kept on disk for later runs.
    """
    num_classes = len(train.class_names)
    frozen, trained = (
        split_at_frozen(model, config.experiment) if config.uses_feature_cache else (None, model)
    )
    precompute = frozen is not None or not config.augment
    if precompute:
        shape = frozen.output.shape[1:] if frozen is not None else (config.image_size,) * 2 + (3,)
        copies = 2 if config.uses_flip_cache else 1
        nbytes = 4 * (copies * len(train) + len(val)) * math.prod(shape)
        if nbytes > PRECOMPUTE_LIMIT_BYTES:
            frozen, trained, precompute = None, model, False
            notes.append(
                f"Not precomputing inputs: they would take {nbytes / 2**30:.1f} GiB "
                f"(limit {PRECOMPUTE_LIMIT_BYTES / 2**30:.0f} GiB); preprocessing every batch."
            )
    if precompute:
        # One pass over train and validation images together: one graph, one trace.
        images = np.concatenate([train.images, val.images])
        if frozen is not None:
            inputs = _features(frozen, images, config, store)
        else:
            inputs = np.concatenate(list(preprocessed(images, config).as_numpy_iterator()))
        mirrored = None
        if frozen is not None and config.uses_flip_cache:
            flipped = np.ascontiguousarray(train.images[:, :, ::-1])
            mirrored = _features(frozen, flipped, config, store)
        train_ds = feature_dataset(
            inputs[: len(train)],
            train.labels,
            num_classes,
            batch_size=config.batch_size,
            shuffle_seed=config.seed,
            mirrored=mirrored,
        )
        val_ds = feature_dataset(
            inputs[len(train) :], val.labels, num_classes, batch_size=CACHED_EVAL_BATCH_SIZE
        )
    else:
        common = {
            "num_classes": num_classes,
            "batch_size": config.batch_size,
            "normalization": config.normalization,
            "image_size": config.image_size,
            "seed": config.seed,
        }
        train_ds = make_dataset(
            train.images, train.labels, augment=config.augment, shuffle=True, **common
        )
        val_ds = make_dataset(val.images, val.labels, **common)
    # Steps on cached features are tiny: run several per call into TensorFlow.
    return trained, train_ds, val_ds, CACHED_STEPS_PER_EXECUTION if frozen is not None else 1


def fit(
    model: keras.Model,
    train: ImageSet,
    val: ImageSet,
    config: TrainConfig,
    *,
    workdir: str | os.PathLike | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
    feature_store: str | os.PathLike | None = None,
) -> TrainResult:
    """Freeze, compile and train ``model`` on ``train``, validating on ``val`` each epoch.

    Args:
        model: a :func:`tlcourse.models.transfer_model`.
        train, val: uint8 images with integer labels.
        config: the run's settings.
        workdir: folder for the per-epoch history and the resumable checkpoint; a rerun with
            the same folder resumes after the last finished epoch. ``None``: no checkpoints.
        callbacks: more Keras callbacks, run after tlcourse's own.
        verbose: Keras' ``verbose`` (1 = progress bar with ETA, 2 = a line per epoch).
        feature_store: folder where a frozen backbone's output is kept between runs (see
            :mod:`tlcourse.feature_store`); ``None``: computed in memory for this run only.
    """
    num_classes = len(train.class_names)
    check_fits(model, train, config)
    keras.utils.set_random_seed(config.seed)
    summary = freezing.freeze(model, config.experiment)
    own: list[keras.callbacks.Callback] = []
    notes: list[str] = []
    recorder = None
    if workdir is not None:
        workdir = Path(workdir)
        recorder = JSONHistory(workdir / "history.json")
        if recorder.epochs:
            notes.append(
                f"Resumed after epoch {max(recorder.epochs) + 1} from the checkpoint in {workdir}."
            )
        own += [keras.callbacks.BackupAndRestore(str(workdir / "backup")), recorder]

    start, start_cpu = time.perf_counter(), time.process_time()
    store = FeatureStore(feature_store) if feature_store is not None else None
    trained, train_ds, val_ds, steps = _training_data(model, train, val, config, notes, store)
    if store is not None and store.images_loaded:
        notes.append(
            f"Frozen-backbone features of {store.images_loaded} images were read from the "
            f"feature store ({store.folder}), computed by an earlier run: the time to compute "
            "them is not in this run's wall or CPU time."
        )
    probe_images = _probe_images(val, config)
    monitor = CollapseMonitor(num_classes, full_model=model, probe=probe_images)
    compile_model(
        trained,
        config,
        steps_per_execution=steps,
        steps_per_epoch=math.ceil(len(train) / config.batch_size),
    )
    keras_history = trained.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        shuffle=False,  # the datasets shuffle themselves
        callbacks=[monitor, *own, *(callbacks or [])],
        verbose=verbose,
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    history = (
        recorder.history()
        if recorder
        else {k: list(map(float, v)) for k, v in keras_history.history.items()}
    )
    epochs_run = len(history.get("loss", []))
    result = TrainResult(
        config=config,
        history=history,
        freeze=summary,
        wall_time_s=wall,
        cpu_time_s=cpu,
        images_per_second=epochs_run * len(train) / wall if wall > 0 else float("nan"),
        notes=notes,
        dead_channels=dead_channel_fraction(model, probe_images),
        trained_on=train.digests(),
    )
    if monitor.collapse_epoch is not None:
        result.collapsed = True
        result.collapse_epoch = monitor.collapse_epoch
        result.notes.append(
            collapse_message(config, monitor.collapse_epoch, num_classes, result.dead_channels)
        )
    return result


def check_fits(model: keras.Model, train: ImageSet, config: TrainConfig) -> None:
    """Raise a ``ValueError`` naming the fix when ``model`` does not fit the data or config."""
    size = tuple(model.input.shape[1:3])
    if size != (config.image_size, config.image_size):
        raise ValueError(
            f"The model takes {size[0]}x{size[1]} images but `config.image_size` is "
            f"{config.image_size}: build it with transfer_model(input_shape=({config.image_size}, "
            f"{config.image_size}, 3)), or set TrainConfig(image_size={size[0]})."
        )
    classes = model.output.shape[-1]
    if classes != train.num_classes:
        raise ValueError(
            f"The model has {classes} outputs but the data has {train.num_classes} classes: build "
            f"it with transfer_model(classes={train.num_classes})."
        )


def _probe_images(val: ImageSet, config: TrainConfig) -> np.ndarray:
    """Up to PROBE_SIZE validation images, preprocessed as the model sees them."""
    dataset = make_dataset(
        val.images[:PROBE_SIZE],
        val.labels[:PROBE_SIZE],
        num_classes=len(val.class_names),
        batch_size=PROBE_SIZE,
        normalization=config.normalization,
        image_size=config.image_size,
    )
    return next(iter(dataset))[0].numpy()


def collapse_message(config: TrainConfig, epoch: int, num_classes: int, dead: float) -> str:
    """What a user should read when a run collapsed: what happened and what to try."""
    dead_text = f" {100 * dead:.0f}% of fire9's channels are zero for every probe image."
    return (
        f"Run {config.experiment} collapsed at epoch {epoch}: the training loss sat at "
        f"ln({num_classes}) = {math.log(num_classes):.3f} with chance accuracy "
        f"({100 / num_classes:.0f}%).{dead_text} The model gives every image the same "
        "uniform probabilities, so its numbers are not a result. Try a smaller learning rate "
        f"(got {config.learning_rate:g}), train the head first, or clip gradients."
    )
