"""Named freezing strategies for a SqueezeNet transfer model.

A strategy decides which blocks train: the study's three experiments are

* ``E1`` (``"head"``): only the new classification head trains;
* ``E2`` (``"fire8"``): the head plus fire8 and fire9 train;
* ``E3`` (``"all"``): every layer trains.

Any block name from :data:`tlcourse.architecture.BLOCKS` (``conv1``, ``fire2`` ... ``fire9``)
is also a strategy: "train from this block on". Changing ``trainable`` only takes effect
after ``compile``: :func:`freeze` recompiles a compiled model with its own settings.
SqueezeNet has no BatchNormalization, so there are no moving statistics to worry about;
the recompile rule is the trap here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from tlcourse.architecture import BLOCKS
from tlcourse.config import EXPERIMENTS
from tlcourse.models import HEAD_LAYERS

#: conv1 .. fire9 (conv10 is ImageNet's classifier, replaced by the new head).
_BACKBONE_BLOCKS = BLOCKS[:-1]


def block_of(layer_name: str) -> str:
    """The block of a layer: ``"fire8"`` for ``"fire8_squeeze"``, ``"head"`` for the head."""
    if layer_name in HEAD_LAYERS:
        return "head"
    prefix = layer_name.split("_", 1)[0]
    if prefix in _BACKBONE_BLOCKS:
        return prefix
    if prefix.startswith("pool"):
        return "pool"
    return "input" if layer_name == "image" else prefix


def strategies() -> tuple[str, ...]:
    """Every accepted strategy name: the experiments, ``head``, ``all`` and the block names."""
    return (*EXPERIMENTS, "head", "all", *_BACKBONE_BLOCKS)


def trainable_blocks(strategy: str) -> tuple[str, ...]:
    """The blocks that train under ``strategy`` (the head always trains)."""
    name = EXPERIMENTS.get(strategy, strategy)
    if name == "head":
        return ("head",)
    if name == "all":
        return (*_BACKBONE_BLOCKS, "head")
    if name in _BACKBONE_BLOCKS:
        return (*_BACKBONE_BLOCKS[_BACKBONE_BLOCKS.index(name) :], "head")
    raise ValueError(
        f"Unknown freezing strategy. Accepted: {', '.join(strategies())} (a block name means "
        f"'train from this block on'). Received: strategy={strategy!r}"
    )


@dataclass(frozen=True)
class FreezeSummary:
    """Which layers train after a strategy was applied, with parameter counts."""

    strategy: str
    trainable_layers: tuple[str, ...]
    frozen_layers: tuple[str, ...]
    trainable_params: int
    frozen_params: int

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.frozen_params

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "trainable_layers": list(self.trainable_layers),
            "frozen_layers": list(self.frozen_layers),
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
        }

    def __str__(self) -> str:
        return (
            f"{self.strategy}: {self.trainable_params:,} trainable and {self.frozen_params:,} "
            f"frozen parameters; training {', '.join(self.trainable_layers) or 'nothing'}"
        )


def _count(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def summarize(model: keras.Model, strategy: str = "custom") -> FreezeSummary:
    """Count trainable and frozen parameters of ``model`` as it is now."""
    trainable, frozen = [], []
    for layer in model.layers:
        if layer.weights:
            (trainable if layer.trainable else frozen).append(layer.name)
    return FreezeSummary(
        strategy=strategy,
        trainable_layers=tuple(trainable),
        frozen_layers=tuple(frozen),
        trainable_params=_count(model.trainable_weights),
        frozen_params=_count(model.non_trainable_weights),
    )


def freeze(model: keras.Model, strategy: str) -> FreezeSummary:
    """Apply ``strategy`` to ``model`` and recompile it if it was compiled.

    Returns the :class:`FreezeSummary` of the result.
    """
    blocks = set(trainable_blocks(strategy))
    model.trainable = True
    for layer in model.layers:
        layer.trainable = block_of(layer.name) in blocks
    if model.compiled:
        # `trainable` is read when the train step is built: recompile with the same settings.
        model.compile_from_config(model.get_compile_config())
    return summarize(model, strategy)
