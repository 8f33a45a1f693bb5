"""SqueezeNet 1.1 in Keras against the real torchvision weights' known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tlcourse.architecture import feature_map_size, torch_tensor_shapes
from tlcourse.models import squeezenet1_1, transfer_model
from tlcourse.preprocessing import normalize


@pytest.fixture(scope="module")
def imagenet_model(weights_npz):
    return squeezenet1_1(weights=weights_npz, classifier_activation=None)


@pytest.fixture(scope="module")
def known_answer(shared_dir):
    return np.load(shared_dir / "weights" / "cat_known_answer.npz")


def test_reproduces_reference_logits(imagenet_model, known_answer):
    logits = imagenet_model.predict(known_answer["input_nhwc"], verbose=0)[0]
    np.testing.assert_allclose(logits, known_answer["logits"], atol=1e-3)


def _torchvision_eval_transform(path) -> np.ndarray:
    """Resize the shorter side to 256 (bilinear), centre-crop 224: the card's preprocessing."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
    )
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)))


def test_cat_jpg_top5_through_library_preprocessing(imagenet_model, known_answer, shared_dir):
    pixels = _torchvision_eval_transform(shared_dir / "weights" / "cat.jpg")
    logits = imagenet_model.predict(normalize(pixels[None], "imagenet"), verbose=0)[0]
    expected = np.argsort(known_answer["logits"])[::-1][:5]
    assert list(np.argsort(logits)[::-1][:5]) == list(expected)
    names = (shared_dir / "weights" / "imagenet_classes.txt").read_text().splitlines()
    assert "kit fox" in names[int(np.argmax(logits))]


def test_parameter_count_matches_torchvision():
    model = squeezenet1_1(weights=None)
    assert (
        model.count_params()
        == 1_235_496
        == sum(int(np.prod(s)) for s in torch_tensor_shapes().values())
    )


@pytest.mark.parametrize(
    ("size", "side"), [(32, 1), (64, 3), (96, 5), (128, 7), (224, 13), (227, 14)]
)
def test_feature_map_follows_ceil_mode_pools(size, side):
    # torchvision pools with ceil_mode=True: 227 -> 113 -> 56 -> 28 -> 14 (floor would give 13).
    model = squeezenet1_1(include_top=False, weights=None, input_shape=(size, size, 3))
    assert model.output.shape[1:] == (side, side, 512)
    assert feature_map_size(size) == side


def test_transfer_model_loads_backbone_and_new_head(weights_npz):
    model = transfer_model(classes=10, input_shape=(32, 32, 3), weights=weights_npz)
    reference = dict(np.load(weights_npz))
    np.testing.assert_array_equal(
        model.get_layer("fire9_expand3x3").kernel.numpy(),
        reference["features.12.expand3x3.weight"].transpose(2, 3, 1, 0),
    )
    head = model.get_layer("head_dense")
    assert head.kernel.shape == (512, 10)
    assert head.get_config()["activation"] == "linear"  # no ReLU in front of the softmax
    probabilities = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert [layer.name for layer in model.layers][-4:] == [
        "head_pool",
        "head_dropout",
        "head_dense",
        "predictions",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": 10}, "classes=10"),
        ({"input_shape": (16, 16, 3), "weights": None}, "at least 32"),
        ({"input_shape": (64, 64, 1), "weights": None}, "channels-last RGB"),
        ({"weights": "no/such/file.npz"}, "weights='no/such/file.npz'"),
        ({"pooling": "sum", "include_top": False, "weights": None}, "pooling='sum'"),
    ],
)
def test_builder_rejects_bad_arguments_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match="Received") as info:
        squeezenet1_1(**kwargs)
    assert message in str(info.value)


def test_transfer_model_rejects_bad_head():
    with pytest.raises(ValueError, match="classes=1"):
        transfer_model(classes=1, weights=None)
    with pytest.raises(ValueError, match="dropout=1.5"):
        transfer_model(dropout=1.5, weights=None)
