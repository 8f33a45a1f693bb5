"""Weights files: the torch-free .pth reader, validation, locating, download and conversion.

tests/fixtures/*.pth were written once by real torch (see tests/fixtures/make_pth_fixture.py);
tests/torch_zip.py writes the same format in pure Python, cross-checked here against them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from torch_zip import (
    op_global,
    op_str,
    op_tuple,
    state_dict_pickle,
    tensor_pickle,
    write_archive,
    write_torch_zip,
)

from tlcourse import architecture, config, hub, weights
from tlcourse.errors import DataFormatError, DataNotFoundError, WeightsError
from tlcourse.torch_checkpoint import read_state_dict

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_PTH = FIXTURES / "tiny_state_dict.pth"
SHARED_NPZ_SHA256 = "ed27ae9b778d70c6d8ab90416697b2dc0bb0d7fbc3573daf18a27c28928d09be"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $TLCOURSE_CACHE; $TLCOURSE_WEIGHTS unset."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(config.CACHE_ENV, str(folder))
    monkeypatch.delenv(config.WEIGHTS_ENV, raising=False)
    return folder


@pytest.fixture(scope="session")
def shared_state(weights_npz: Path) -> dict[str, np.ndarray]:
    with np.load(weights_npz) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.fixture(scope="session")
def squeezenet_pth(shared_state: dict[str, np.ndarray], tmp_path_factory) -> Path:
    """A full-size torchvision-style SqueezeNet .pth written from the shared .npz."""
    return write_torch_zip(tmp_path_factory.mktemp("pth") / "squeezenet1_1.pth", shared_state)


def serve(httpserver: HTTPServer, path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Serve ``path`` as torchvision's file, re-pinning the registry to its sha256."""
    entry = hub.REGISTRY[weights.REMOTE_NAME]
    monkeypatch.setitem(
        hub.REGISTRY, entry.name, dataclasses.replace(entry, sha256=hub.sha256sum(path))
    )
    httpserver.expect_request("/models/" + entry.fname).respond_with_data(path.read_bytes())
    return httpserver.url_for("/models/" + entry.fname)


def leftovers(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


# --- the torch-free .pth reader -------------------------------------------------------------


def test_reader_matches_real_torch_fixture() -> None:
    state = read_state_dict(TINY_PTH)
    with np.load(FIXTURES / "tiny_state_dict_expected.npz") as expected:
        assert list(state) == expected.files
        for name in expected.files:
            assert state[name].dtype == expected[name].dtype, name
            assert state[name].shape == expected[name].shape, name
            np.testing.assert_array_equal(state[name], expected[name], err_msg=name)
            assert state[name].flags.c_contiguous, name
    assert state["bn.num_batches_tracked"].shape == ()
    assert state["half.weight"].dtype == np.float16 and state["index"][2] == 2**40


def test_fixture_covers_shared_storage_and_views() -> None:
    with zipfile.ZipFile(TINY_PTH) as archive:
        storages = [n for n in archive.namelist() if "/data/" in n]
    state = read_state_dict(TINY_PTH)
    assert len(storages) < len(state)  # shared.* tensors share one storage
    np.testing.assert_array_equal(state["shared.tail"], np.arange(6, 10) / 4)
    np.testing.assert_array_equal(state["shared.every3"], np.array([1, 4, 7]) / 4)
    np.testing.assert_array_equal(state["shared.matrix"], np.arange(2, 8).reshape(2, 3) / 4)


def _globals(pth: Path) -> set[str]:
    with zipfile.ZipFile(pth) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_pure_python_writer_agrees_with_real_torch(tmp_path: Path) -> None:
    with np.load(FIXTURES / "tiny_state_dict_expected.npz") as expected:
        ours = write_torch_zip(tmp_path / "ours.pth", dict(expected))
    from_torch, from_ours = read_state_dict(TINY_PTH), read_state_dict(ours)
    assert list(from_ours) == list(from_torch)
    for name, value in from_torch.items():
        assert from_ours[name].dtype == value.dtype and from_ours[name].shape == value.shape
        np.testing.assert_array_equal(from_ours[name], value, err_msg=name)
    # Our writer uses only names real torch also wrote (bf16 aside, which it writes as float32).
    assert _globals(ours) <= _globals(TINY_PTH)


def test_big_endian_archive(tmp_path: Path) -> None:
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.float16([1.5, -2])}
    state = read_state_dict(write_torch_zip(tmp_path / "big.pth", arrays, byteorder="big"))
    for name, value in arrays.items():
        assert state[name].dtype == value.dtype
        np.testing.assert_array_equal(state[name], value)


def test_malicious_pickle_from_torch_is_refused(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataFormatError, match=r"refusing to load.*\.system") as info:
        read_state_dict(FIXTURES / "malicious.pth")
    assert "malicious.pth" in str(info.value)
    assert "was executed" not in capfd.readouterr().out


@pytest.mark.parametrize(
    "module,name",
    [("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"), ("torch", "load")],
)
def test_any_other_global_is_refused(tmp_path: Path, module: str, name: str) -> None:
    call = op_global(module, name) + op_tuple([op_str("print('pwned')")]) + b"R"
    path = write_archive(tmp_path / "evil.pth", state_dict_pickle([("x", call)]), {})
    with pytest.raises(DataFormatError, match=f"references {module}.{name}"):
        read_state_dict(path)


def test_legacy_format_is_refused_with_advice() -> None:
    with pytest.raises(DataFormatError, match="legacy.*PyTorch 1.6.*torch.save"):
        read_state_dict(FIXTURES / "legacy.pth")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(DataFormatError, match="not a PyTorch .pth"):
        read_state_dict(path)


def test_storage_shorter_than_declared_is_refused(tmp_path: Path) -> None:
    entry = tensor_pickle("0", "FloatStorage", 6, (2, 3))
    path = write_archive(
        tmp_path / "short.pth", state_dict_pickle([("w", entry)]), {"0": b"\0" * 8}
    )
    with pytest.raises(DataFormatError, match="holds 8 bytes"):
        read_state_dict(path)


def test_view_beyond_storage_is_refused(tmp_path: Path) -> None:
    entry = tensor_pickle("0", "FloatStorage", 4, (2, 3))
    path = write_archive(
        tmp_path / "view.pth", state_dict_pickle([("w", entry)]), {"0": b"\0" * 16}
    )
    with pytest.raises(DataFormatError, match="reaches element 5 of a storage holding 4"):
        read_state_dict(path)


def test_missing_storage_is_refused(tmp_path: Path) -> None:
    entry = tensor_pickle("7", "FloatStorage", 1, ())
    path = write_archive(tmp_path / "gap.pth", state_dict_pickle([("w", entry)]), {})
    with pytest.raises(DataFormatError, match="data/7 is missing"):
        read_state_dict(path)


# --- validation -----------------------------------------------------------------------------


def test_shared_npz_is_a_valid_state_dict(weights_npz: Path) -> None:
    state = weights.load_state_dict(weights_npz, download=False)
    assert list(state) == list(architecture.torch_tensor_shapes())
    assert all(v.dtype == np.float32 for v in state.values())
    assert sum(v.size for v in state.values()) == weights.WEIGHTS_CARD["parameters"]


def test_validation_names_source_tensor_and_shapes(shared_state: dict[str, np.ndarray]) -> None:
    state = dict(shared_state)
    del state["features.3.squeeze.weight"]
    state["features.0.weight"] = state["features.0.weight"].transpose(2, 3, 1, 0)  # Keras HWIO
    state["classifier.1.bias"] = state["classifier.1.bias"][:10]
    state["features.12.expand1x1.bias"] = np.full(256, np.nan, dtype=np.float32)
    state["fc.weight"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(WeightsError) as info:
        weights.validate_state_dict(state, source="my_weights.npz")
    message = str(info.value)
    assert message.startswith("my_weights.npz ")
    assert "missing tensor 'features.3.squeeze.weight' (expected shape (16, 64, 1, 1))" in message
    assert "'features.0.weight': expected shape (64, 3, 3, 3), received (3, 3, 3, 64)" in message
    assert "Keras HWIO" in message
    assert "'classifier.1.bias': expected shape (1000,), received (10,)" in message
    assert "'features.12.expand1x1.bias': 256 non-finite" in message
    assert "unexpected tensor 'fc.weight'" in message


def test_validation_converts_to_float32(shared_state: dict[str, np.ndarray]) -> None:
    state = {k: v.astype(np.float16) for k, v in shared_state.items()}
    out = weights.validate_state_dict(state, source="half.npz")
    assert all(v.dtype == np.float32 for v in out.values())


# --- locating -------------------------------------------------------------------------------


def test_locate_order_explicit_then_env_then_cache(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, from_env = tmp_path / "explicit.npz", tmp_path / "env.pth"
    cached = cache / weights.CACHED_NPZ
    for path in (explicit, from_env, cached):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder")
    monkeypatch.setenv(config.WEIGHTS_ENV, str(from_env))
    assert weights.locate_weights(explicit, download=False) == explicit
    assert weights.locate_weights(download=False) == from_env
    monkeypatch.delenv(config.WEIGHTS_ENV)
    assert weights.locate_weights(download=False) == cached


def test_locate_rejects_missing_or_unknown_files(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        weights.locate_weights(tmp_path / "nope.npz")
    (tmp_path / "w.h5").write_bytes(b"x")
    monkeypatch.setenv(config.WEIGHTS_ENV, str(tmp_path / "w.h5"))
    with pytest.raises(DataFormatError, match=r"\$TLCOURSE_WEIGHTS.*\.npz or \.pth"):
        weights.locate_weights()


def test_nothing_found_without_download_says_what_to_do(cache: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        weights.locate_weights(download=False)
    message = str(info.value)
    assert "TLCOURSE_WEIGHTS" in message and ".npz" in message and ".pth" in message
    assert hub.REGISTRY[weights.REMOTE_NAME].origin in message


# --- download and conversion ----------------------------------------------------------------


def test_download_converts_to_npz_in_cache(
    httpserver: HTTPServer,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    squeezenet_pth: Path,
    shared_state: dict[str, np.ndarray],
) -> None:
    url = serve(httpserver, squeezenet_pth, monkeypatch)
    path = weights.locate_weights(origin=url)
    assert path == cache / weights.CACHED_NPZ
    with np.load(path, allow_pickle=False) as converted:
        assert converted.files == list(shared_state)
        for name, value in shared_state.items():
            np.testing.assert_array_equal(converted[name], value, err_msg=name)
    assert len(httpserver.log) == 1
    # Later calls use the converted file: no request, no origin needed.
    state = weights.load_state_dict()
    assert len(httpserver.log) == 1 and list(state) == list(shared_state)


def test_pth_and_npz_give_the_same_weights(squeezenet_pth: Path, weights_npz: Path) -> None:
    from_pth = weights.load_state_dict(squeezenet_pth)
    from_npz = weights.load_state_dict(weights_npz)
    for name, value in from_npz.items():
        np.testing.assert_array_equal(from_pth[name], value, err_msg=name)


@pytest.mark.parametrize("damage", ["misshapen", "missing"])
def test_invalid_download_is_not_cached(
    httpserver: HTTPServer,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    shared_state: dict[str, np.ndarray],
    tmp_path: Path,
    damage: str,
) -> None:
    state = dict(shared_state)
    if damage == "misshapen":
        state["features.6.expand3x3.weight"] = state["features.6.expand3x3.weight"][:, :, :2]
    else:
        del state["features.6.expand3x3.weight"]
    url = serve(httpserver, write_torch_zip(tmp_path / "bad.pth", state), monkeypatch)
    with pytest.raises(WeightsError, match=r"'features\.6\.expand3x3\.weight'") as info:
        weights.locate_weights(origin=url)
    assert url in str(info.value)
    assert leftovers(cache) == []


def test_malicious_download_is_refused_and_not_cached(
    httpserver: HTTPServer, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = serve(httpserver, FIXTURES / "malicious.pth", monkeypatch)
    with pytest.raises(DataFormatError, match="refusing to load"):
        weights.load_state_dict(origin=url)
    assert leftovers(cache) == []


def test_failed_download_points_offline(httpserver: HTTPServer, cache: Path) -> None:
    httpserver.expect_request("/w.pth").respond_with_data("", status=404)
    url = httpserver.url_for("/w.pth")
    with pytest.raises(DataNotFoundError) as info:
        weights.locate_weights(origin=url)
    assert url in str(info.value) and "TLCOURSE_WEIGHTS" in str(info.value)
    assert leftovers(cache) == []


def test_damaged_cached_npz_says_to_delete_it(cache: Path) -> None:
    cache.mkdir()
    (cache / weights.CACHED_NPZ).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFormatError, match="delete it"):
        weights.load_state_dict()


# --- card and provenance --------------------------------------------------------------------


def test_card_states_preprocessing_and_source() -> None:
    card = weights.WEIGHTS_CARD
    assert "mode='torch'" in card["preprocessing"] and "channels_last" in card["preprocessing"]
    assert card["mean"] == config.IMAGENET_MEAN and card["std"] == config.IMAGENET_STD
    assert card["source"] == hub.REGISTRY[weights.REMOTE_NAME].origin
    assert card["parameters"] == sum(
        int(np.prod(s)) for s in architecture.torch_tensor_shapes().values()
    )


def test_provenance_records_hash(weights_npz: Path, tmp_path: Path) -> None:
    record = weights.weights_provenance(weights_npz)
    assert record["sha256"] == SHARED_NPZ_SHA256 and "shared/weights" in record["known_as"]
    other = tmp_path / "mine.npz"
    other.write_bytes(b"abc")
    record = weights.weights_provenance(other)
    assert record["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert record["known_as"].startswith("unpinned") and record["format"] == "npz"
