"""Named training protocols: the study as written, the change that keeps it alive, and the
steps of the better recipe, each one change away from the one before.

A protocol is data: settings for every experiment plus settings for single experiments,
applied over :class:`tlcourse.train.TrainConfig`'s defaults (the study's protocol). The book
reads the descriptions from here; the numbers come from the run records in ``results/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tlcourse.architecture import feature_map_size


@dataclass(frozen=True)
class Protocol:
    """Changes to the study's protocol, for all experiments and for single ones."""

    name: str
    description: str
    common: dict = field(default_factory=dict)
    per_experiment: dict[str, dict] = field(default_factory=dict)
    parent: str | None = None

    def settings(self, experiment: str) -> dict:
        """The ``TrainConfig`` fields this protocol sets for ``experiment``."""
        inherited = PROTOCOLS[self.parent].settings(experiment) if self.parent else {}
        return {**inherited, **self.common, **self.per_experiment.get(experiment, {})}


_BACKBONE_LR = {"E2": {"learning_rate": 1e-4}, "E3": {"learning_rate": 1e-4}}

_LADDER = [
    Protocol(
        "study",
        "The study as written: 32 px, pixels /255, Adam 1e-3 for every experiment.",
    ),
    Protocol(
        "study-lr1e-4",
        "The smallest change that keeps E2 and E3 alive: Adam at 1e-4 when backbone layers "
        "train (at 1e-3 the ReLUs of fire9 die within the first epoch and the run sits at "
        "chance).",
        per_experiment=_BACKBONE_LR,
        parent="study",
    ),
    Protocol(
        "imagenet-norm",
        "Normalise inputs the way the weights were trained: ImageNet mean and standard "
        "deviation per channel instead of plain /255.",
        common={"normalization": "imagenet"},
        parent="study-lr1e-4",
    ),
    *(
        Protocol(
            f"imagenet-norm-{size}px",
            f"Resize the 32 px images to {size} px: the last fire modules see a "
            f"{feature_map_size(size)}x{feature_map_size(size)} map instead of 1x1.",
            common={"image_size": size},
            parent="imagenet-norm",
        )
        for size in (64, 96, 128, 160, 224)
    ),
    # The frozen backbone (E1), one change at a time on top of 224 px.
    Protocol(
        "frozen-no-dropout",
        "E1 without dropout in front of the linear head: with 512 pooled features and only "
        "5,130 weights the head cannot overfit much, and dropout 0.5 mostly adds noise (the "
        "training loss stays high).",
        per_experiment={"E1": {"dropout": 0.0}},
        parent="imagenet-norm-224px",
    ),
    Protocol(
        "frozen-lr1e-4",
        "E1 with Adam at 1e-4 instead of 1e-3: at 1e-3 the head's validation accuracy "
        "jumps from epoch to epoch around a lower level.",
        per_experiment={"E1": {"learning_rate": 1e-4}},
        parent="frozen-no-dropout",
    ),
    Protocol(
        "frozen-flips",
        "E1 with random horizontal flips, from cached features of the mirrored training "
        "images (one more pass of the backbone, then as fast as before).",
        per_experiment={"E1": {"flip_cache": True}},
        parent="frozen-lr1e-4",
    ),
    Protocol(
        "finetune-cpu-hour",
        "Full fine-tune (run E3) that fits an hour of training on 2 CPU cores: 128 px, "
        "ImageNet normalisation, random flips and shifts, batches of 64, Adam warmed up over "
        "one epoch to 3e-4 and then decayed to zero along a cosine over 15 epochs, label "
        "smoothing 0.1.",
        per_experiment={
            "E3": {
                "epochs": 15,
                "batch_size": 64,
                "learning_rate": 3e-4,
                "schedule": "cosine",
                "warmup_epochs": 1.0,
                "augment": True,
                "label_smoothing": 0.1,
            }
        },
        parent="imagenet-norm-128px",
    ),
]

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in _LADDER}
DEFAULT_PROTOCOL = "study-lr1e-4"


def protocol_rank(name: str) -> tuple[int, str]:
    """Sort key: protocols in the order of the recipe ladder, unknown names last by name."""
    order = list(PROTOCOLS)
    return (order.index(name) if name in order else len(order), name)


def check_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or a ``ValueError`` listing the names."""
    if name not in PROTOCOLS:
        raise ValueError(
            f"`protocol` must be one of {list(PROTOCOLS)}. Received: protocol={name!r}"
        )
    return PROTOCOLS[name]
