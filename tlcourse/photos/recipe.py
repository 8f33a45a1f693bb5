"""Train a photo classifier the way the book teaches: a new head first, then fine-tune.

1. **Head** on the frozen ImageNet backbone. The backbone's pooled output of every training image
   (and of its mirror image, for random flips) and of every validation image is computed once
   (kept in a :class:`~tlcourse.feature_store.FeatureStore` between runs), so each of the head's
   epochs takes a fraction of a second instead of a pass of the backbone.
2. **Fine-tune** every layer at a low learning rate, recompiled after unfreezing, on images
   streamed from disk with random crops and flips (:mod:`tlcourse.photos.pipeline`).

Both stages stop early when validation accuracy stops improving and keep their best epoch; if no
fine-tuned epoch beats the head alone, the head alone is kept (and the record says so). The test
images, when the folder has ``test/`` beside ``val/``, are used once, at the end.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlcourse.evaluate import Evaluation
from tlcourse.photos.folders import ImageFiles, PhotoFolder, open_folder

#: Images a batch when computing features and when evaluating (changes no number, only speed).
FEATURE_BATCH = 64


@dataclass(frozen=True)
class PhotoConfig:
    """Everything that decides a photo training run. Defaults suit photos of any size."""

    #: Side of the square the network sees, and of the centre square it is cropped from.
    image_size: int = 224
    resize_to: int = 256
    batch_size: int = 32
    #: Stage 1: the new head on the frozen backbone (cached features, random flips).
    head_epochs: int = 100
    head_learning_rate: float = 1e-4
    head_patience: int = 20
    dropout: float = 0.0
    #: Stage 2: every layer, recompiled at a low rate. 0 epochs: keep the frozen backbone.
    finetune_epochs: int = 8
    finetune_learning_rate: float = 1e-4
    finetune_patience: int = 3
    label_smoothing: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("image_size", "resize_to", "batch_size", "head_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        for name in ("finetune_epochs", "head_patience", "finetune_patience", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
        if self.image_size < 32:
            raise ValueError(
                "`image_size` must be at least 32 (SqueezeNet's pools need it); 224 is what "
                f"the ImageNet weights saw. Received: image_size={self.image_size}"
            )
        if self.resize_to < self.image_size:
            raise ValueError(
                "`resize_to` (the side images are resized to before cropping) must be at least "
                f"`image_size`. Received: resize_to={self.resize_to}, "
                f"image_size={self.image_size}"
            )
        for name in ("head_learning_rate", "finetune_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0. Received: {getattr(self, name)}")
        for name in ("dropout", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"`{name}` must lie in [0, 1). Received: {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PhotoResult:
    """A trained classifier and how it was trained and measured."""

    model: object  # keras.Model: the saved model (uint8 pixels of any size in)
    folder: PhotoFolder
    config: PhotoConfig
    head_history: dict[str, list[float]]
    finetune_history: dict[str, list[float]]
    head_val: Evaluation
    val: Evaluation
    test: Evaluation | None
    kept: str  # "fine-tuned" or "head" (no fine-tuned epoch beat the head)
    times_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.folder.class_names


def _compile(model, learning_rate: float, config: PhotoConfig, steps_per_execution: int = 1):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def _early_stopping(patience: int):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=patience, restore_best_weights=True, verbose=0
    )


def _history(keras_history) -> dict[str, list[float]]:
    return {k: [float(v) for v in values] for k, values in keras_history.history.items()}


def _features(frozen, files: ImageFiles, config: PhotoConfig, store, *, mirror: bool = False):
    """The frozen backbone's pooled output for ``files`` (centre crops, maybe mirrored)."""
    from tlcourse.feature_store import array_digest
    from tlcourse.photos.pipeline import PREPROCESSING_VERSION, photo_dataset

    key = {
        "preprocessing": PREPROCESSING_VERSION,
        "files": files.fingerprint(),
        "image_size": config.image_size,
        "resize_to": config.resize_to,
        "mirror": mirror,
        "weights": array_digest(*frozen.get_weights()),
        "layers": [layer.name for layer in frozen.layers],
    }
    dataset = photo_dataset(
        files,
        image_size=config.image_size,
        resize_to=config.resize_to,
        batch_size=FEATURE_BATCH,
        mirror=mirror,
    )

    def compute() -> np.ndarray:
        return frozen.predict(dataset.map(lambda x, y: x), verbose=0)

    if store is None:
        return compute()
    return store.load_or_compute_keyed(key, len(files), compute)


def _evaluate(network, files: ImageFiles, config: PhotoConfig) -> Evaluation:
    from tlcourse.evaluate import evaluate_model
    from tlcourse.photos.pipeline import photo_dataset

    dataset = photo_dataset(
        files, image_size=config.image_size, resize_to=config.resize_to, batch_size=FEATURE_BATCH
    )
    return evaluate_model(network, dataset, files.class_names)


def train(
    data: str | os.PathLike | PhotoFolder,
    config: PhotoConfig | None = None,
    *,
    weights: str | os.PathLike | None = None,
    validation_split: float | None = None,
    workdir: str | os.PathLike | None = None,
    feature_store: str | os.PathLike | None = None,
    callbacks: list | None = None,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
) -> PhotoResult:
    """Train a classifier for the classes of a folder of photos.

    Args:
        data: a folder (or archive) as :func:`tlcourse.photos.open_folder` takes it, or an
            already opened :class:`PhotoFolder`.
        config: the settings; defaults to ``PhotoConfig()``.
        weights: SqueezeNet 1.1 ImageNet weights; defaults to ``$TLCOURSE_WEIGHTS``, the cache,
            then a download.
        validation_split: see :func:`~tlcourse.photos.open_folder`.
        workdir: folder for the fine-tuning checkpoint: a rerun with the same folder resumes
            after the last finished epoch. Defaults to None (no checkpoint).
        feature_store: folder keeping the frozen backbone's features between runs. Defaults to
            None (computed for this run only).
        callbacks: more Keras callbacks for the fine-tuning stage, run after tlcourse's own.
        verbose: Keras' ``verbose`` (1: a progress bar, 2: a line per epoch, 0: silent).
        log: where progress lines go.

    Returns:
        A :class:`PhotoResult`; ``result.model`` is the model to save.
    """
    import keras

    from tlcourse.determinism import seed_everything
    from tlcourse.evaluate import evaluate_predictions
    from tlcourse.feature_store import FeatureStore
    from tlcourse.photos.model import build_network, saved_model
    from tlcourse.photos.pipeline import photo_dataset
    from tlcourse.train import JSONHistory, feature_dataset, split_at_frozen
    from tlcourse.weights import locate_weights

    config = config or PhotoConfig()
    folder = (
        data
        if isinstance(data, PhotoFolder)
        else open_folder(data, validation_split=validation_split, seed=config.seed)
    )
    for line in folder.describe():
        log(line)
    weights_path = locate_weights(weights)
    seed_everything(config.seed)  # before the model: the head's first weights come from it
    network = build_network(
        folder.num_classes,
        image_size=config.image_size,
        weights=weights_path,
        dropout=config.dropout,
    )
    times: dict[str, float] = {}
    notes: list[str] = []

    # Stage 1: the head, on features computed once.
    start = time.perf_counter()
    frozen, head = split_at_frozen(network, "head")
    store = FeatureStore(feature_store) if feature_store is not None else None
    log(
        f"head: computing the frozen backbone's features of {len(folder.train):,} training "
        f"images (and their mirror images) and {len(folder.val):,} validation images"
    )
    train_features = _features(frozen, folder.train, config, store)
    mirrored = _features(frozen, folder.train, config, store, mirror=True)
    val_features = _features(frozen, folder.val, config, store)
    if store is not None and store.images_loaded:
        notes.append(
            f"Backbone features of {store.images_loaded:,} images were read from the feature "
            f"store ({store.folder}), computed by an earlier run with the same images and weights."
        )
    times["features_s"] = time.perf_counter() - start
    head_train = feature_dataset(
        train_features,
        folder.train.labels,
        folder.num_classes,
        batch_size=config.batch_size,
        shuffle_seed=config.seed,
        mirrored=mirrored,
    )
    head_val = feature_dataset(val_features, folder.val.labels, folder.num_classes, batch_size=1024)
    _compile(head, config.head_learning_rate, config, steps_per_execution=32)
    start = time.perf_counter()
    head_history = _history(
        head.fit(
            head_train,
            validation_data=head_val,
            epochs=config.head_epochs,
            callbacks=[_early_stopping(config.head_patience)],
            shuffle=False,  # the dataset shuffles itself
            verbose=0,
        )
    )
    times["head_s"] = time.perf_counter() - start
    head_eval = evaluate_predictions(
        folder.val.labels, head.predict(val_features, verbose=0), folder.class_names
    )
    log(
        f"head: validation accuracy {head_eval.accuracy:.2%} (best of "
        f"{len(head_history['loss'])} epochs, in {times['head_s']:.1f} s)"
    )

    # Stage 2: every layer at a low rate, recompiled, streamed with random crops and flips.
    finetune_history: dict[str, list[float]] = {}
    kept = "head"
    final_eval = head_eval
    if config.finetune_epochs:
        head_weights = network.get_weights()
        for layer in network.layers:
            layer.trainable = True
        _compile(network, config.finetune_learning_rate, config)
        common = {
            "image_size": config.image_size,
            "resize_to": config.resize_to,
            "batch_size": config.batch_size,
        }
        own = [_early_stopping(config.finetune_patience)]
        recorder = None
        if workdir is not None:
            backup = Path(workdir) / "backup"
            recorder = JSONHistory(Path(workdir) / "finetune-history.json")
            if backup.exists():
                notes.append(
                    f"Fine-tuning resumed from the checkpoint in {backup} after epoch "
                    f"{len(recorder.epochs)}; early stopping only compared the epochs after it, "
                    "and their shuffles differ from an uninterrupted run's."
                )
            own += [keras.callbacks.BackupAndRestore(str(backup)), recorder]
        log(
            f"fine-tune: every layer, Adam {config.finetune_learning_rate:g}, up to "
            f"{config.finetune_epochs} epochs of {math.ceil(len(folder.train) / config.batch_size)}"
            " batches"
        )
        start = time.perf_counter()
        finetune_history = _history(
            network.fit(
                photo_dataset(folder.train, training=True, seed=config.seed, **common),
                validation_data=photo_dataset(folder.val, **common),
                epochs=config.finetune_epochs,
                callbacks=[*own, *(callbacks or [])],
                shuffle=False,  # the dataset shuffles itself
                verbose=verbose,
            )
        )
        if recorder is not None:  # every epoch, those before an interruption too
            finetune_history = recorder.history()
        times["finetune_s"] = time.perf_counter() - start
        tuned_eval = _evaluate(network, folder.val, config)
        if tuned_eval.accuracy > head_eval.accuracy:
            kept, final_eval = "fine-tuned", tuned_eval
        else:
            network.set_weights(head_weights)
            notes.append(
                f"No fine-tuned epoch beat the head alone on validation ({tuned_eval.accuracy:.2%}"
                f" against {head_eval.accuracy:.2%}): the head on the frozen backbone is kept."
            )
        log(f"fine-tune: validation accuracy {tuned_eval.accuracy:.2%}; kept: {kept}")

    test_eval = _evaluate(network, folder.test, config) if folder.test is not None else None
    if test_eval is not None:
        log(f"test accuracy (used once, now): {test_eval.accuracy:.2%}")
    return PhotoResult(
        model=saved_model(network, folder.class_names, resize_to=config.resize_to),
        folder=folder,
        config=config,
        head_history=head_history,
        finetune_history=finetune_history,
        head_val=head_eval,
        val=final_eval,
        test=test_eval,
        kept=kept,
        times_s={k: round(v, 2) for k, v in times.items()},
        notes=notes,
    )
