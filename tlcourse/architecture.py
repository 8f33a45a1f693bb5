"""SqueezeNet 1.1 as data: blocks, Keras layer names and torchvision tensor names.

``tlcourse.models`` builds the network from this table and ``tlcourse.weights`` checks
weight files against it, so a layer's Keras name and its torchvision key follow from one
rule: Keras layer ``fire{n}_{part}`` holds torchvision ``features.{i}.{part}.weight/.bias``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fire:
    """A fire module: squeeze 1x1, then expand 1x1 and expand 3x3, concatenated."""

    name: str
    torch_index: int
    squeeze: int
    expand1x1: int
    expand3x3: int

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


#: conv1: 64 filters, 3x3, stride 2, no padding (torchvision ``features.0``).
CONV1_FILTERS = 64
CONV1_TORCH = "features.0"
#: The ImageNet classifier: a 1x1 convolution 512 -> 1000 (torchvision ``classifier.1``).
CONV10_TORCH = "classifier.1"
IMAGENET_CLASSES = 1000

FIRES: tuple[Fire, ...] = (
    Fire("fire2", 3, 16, 64, 64),
    Fire("fire3", 4, 16, 64, 64),
    Fire("fire4", 6, 32, 128, 128),
    Fire("fire5", 7, 32, 128, 128),
    Fire("fire6", 9, 48, 192, 192),
    Fire("fire7", 10, 48, 192, 192),
    Fire("fire8", 11, 64, 256, 256),
    Fire("fire9", 12, 64, 256, 256),
)
#: A 3x3/2 max pool follows these layers (torchvision ``features.2``, ``.5`` and ``.8``).
POOL_AFTER: dict[str, str] = {"conv1": "pool1", "fire3": "pool3", "fire5": "pool5"}

#: Blocks in order, as the freezing strategies and exercises name them.
BLOCKS: tuple[str, ...] = ("conv1", *(f.name for f in FIRES), "conv10")


def torch_tensor_shapes(classes: int = IMAGENET_CLASSES) -> dict[str, tuple[int, ...]]:
    """Every tensor of torchvision's ``squeezenet1_1`` state_dict with its OIHW shape."""
    shapes: dict[str, tuple[int, ...]] = {
        f"{CONV1_TORCH}.weight": (CONV1_FILTERS, 3, 3, 3),
        f"{CONV1_TORCH}.bias": (CONV1_FILTERS,),
    }
    in_channels = CONV1_FILTERS
    for fire in FIRES:
        prefix = f"features.{fire.torch_index}"
        for part, out, inp, k in (
            ("squeeze", fire.squeeze, in_channels, 1),
            ("expand1x1", fire.expand1x1, fire.squeeze, 1),
            ("expand3x3", fire.expand3x3, fire.squeeze, 3),
        ):
            shapes[f"{prefix}.{part}.weight"] = (out, inp, k, k)
            shapes[f"{prefix}.{part}.bias"] = (out,)
        in_channels = fire.out_channels
    shapes[f"{CONV10_TORCH}.weight"] = (classes, in_channels, 1, 1)
    shapes[f"{CONV10_TORCH}.bias"] = (classes,)
    return shapes


def keras_to_torch_prefix() -> dict[str, str]:
    """Map each Keras convolution name (``conv1``, ``fire2_squeeze`` ...) to its torch prefix."""
    mapping = {"conv1": CONV1_TORCH, "conv10": CONV10_TORCH}
    for fire in FIRES:
        for part in ("squeeze", "expand1x1", "expand3x3"):
            mapping[f"{fire.name}_{part}"] = f"features.{fire.torch_index}.{part}"
    return mapping


def feature_map_size(input_size: int) -> int:
    """Side of fire9's output map for a square input (conv1 3x3/2, three ceil-mode 3x3/2 pools)."""
    side = (input_size - 3) // 2 + 1
    for _ in POOL_AFTER:
        side = -(-(side - 3) // 2) + 1
    return side


def parameter_count(classes: int = IMAGENET_CLASSES) -> int:
    """Weights and biases of SqueezeNet 1.1 with a ``classes``-way classifier (conv10)."""
    total = 0
    for shape in torch_tensor_shapes(classes).values():
        size = 1
        for dim in shape:
            size *= dim
        total += size
    return total


#: AlexNet as torchvision builds it (one tower): (name, in, out, kernel side); fc layers have
#: kernel side 1, and fc6 reads the 256 x 6 x 6 map of the last convolution.
ALEXNET_LAYERS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1", 3, 64, 11),
    ("conv2", 64, 192, 5),
    ("conv3", 192, 384, 3),
    ("conv4", 384, 256, 3),
    ("conv5", 256, 256, 3),
    ("fc6", 256 * 6 * 6, 4096, 1),
    ("fc7", 4096, 4096, 1),
    ("fc8", 4096, IMAGENET_CLASSES, 1),
)


def alexnet_parameter_count() -> int:
    """Weights and biases of AlexNet (``ALEXNET_LAYERS``), for comparison with SqueezeNet."""
    return sum(inp * out * k * k + out for _, inp, out, k in ALEXNET_LAYERS)
