"""tlcourse.hub: the registry and the download cache, served from 127.0.0.1 only."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import socket
import threading
import time
from pathlib import Path

import keras
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tlcourse import hub
from tlcourse.errors import ChecksumError, DataNotFoundError

NAME = "squeezenet1_1-torchvision"
PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: more than one hash chunk


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, also set as $TLCOURSE_CACHE."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TLCOURSE_CACHE", str(folder))
    return folder


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> hub.RemoteFile:
    """Registry entry NAME re-pinned to PAYLOAD's sha256 (the real file can't be served)."""
    entry = dataclasses.replace(hub.REGISTRY[NAME], sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(hub.REGISTRY, NAME, entry)
    return entry


def leftovers(folder: Path) -> list[str]:
    """Everything in the cache but the (empty) lock files: must be empty after a failure."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing-listens-here.pth"


def test_registry_pins_the_published_files() -> None:
    cifar, squeeze = hub.REGISTRY["cifar10-python"], hub.REGISTRY[NAME]
    assert cifar.fname == "cifar-10-python.tar.gz"
    assert cifar.origin == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    # The same hash keras.datasets.cifar10.load_data pins.
    assert cifar.sha256 in inspect.getsource(keras.datasets.cifar10.load_data)
    assert squeeze.fname == "squeezenet1_1-b8a52dc0.pth"
    assert squeeze.origin == "https://download.pytorch.org/models/" + squeeze.fname
    assert squeeze.sha256.startswith("b8a52dc0")  # torchvision names files by their hash
    for name, entry in hub.REGISTRY.items():
        assert entry.name == name and entry.origin.endswith("/" + entry.fname)
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0


def test_sha256sum_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD * 3)
    assert hub.sha256sum(path) == hashlib.sha256(PAYLOAD * 3).hexdigest()


def test_verify_sha256_names_file_and_both_hashes(tmp_path: Path) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    hub.verify_sha256(path, hashlib.sha256(PAYLOAD).hexdigest().upper())
    with pytest.raises(ChecksumError) as info:
        hub.verify_sha256(path, "0" * 64, hint="Set SOMETHING.")
    message = str(info.value)
    assert str(path) in message and "0" * 64 in message
    assert hashlib.sha256(PAYLOAD).hexdigest() in message
    assert "delete it" in message and message.endswith("Set SOMETHING.")


def test_unknown_name_lists_known_names(cache: Path) -> None:
    with pytest.raises(ValueError, match="cifar10-python.*squeezenet1_1-torchvision") as info:
        hub.fetch("squeezenet1_0")
    assert "Received: name='squeezenet1_0'" in str(info.value)


def test_download_is_cached_and_reused_without_network(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    httpserver.expect_request("/w.pth").respond_with_data(PAYLOAD)
    path = hub.fetch(NAME, origin=httpserver.url_for("/w.pth"))
    assert path == cache / pinned.fname and path.read_bytes() == PAYLOAD
    assert len(httpserver.log) == 1
    assert leftovers(cache) == [pinned.fname]  # no staging folder left
    assert hub.fetch(NAME, origin=httpserver.url_for("/w.pth")) == path
    assert hub.fetch(NAME, origin=closed_port_url(), cache=cache) == path
    assert len(httpserver.log) == 1


def test_wrong_checksum_is_refused_and_nothing_cached(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    httpserver.expect_request("/w.pth").respond_with_data(PAYLOAD[:-1] + b"!")
    url = httpserver.url_for("/w.pth")
    with pytest.raises(ChecksumError) as info:
        hub.fetch(NAME, origin=url, hint="Pass a path instead.")
    message = str(info.value)
    assert pinned.sha256 in message and url in message and "nothing was cached" in message
    assert message.endswith("Pass a path instead.")
    assert leftovers(cache) == []


def test_truncated_transfer_leaves_nothing(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    def cut_short(request: Request) -> Response:
        body = iter([PAYLOAD[:1000]])  # then the server closes the connection
        headers = {"Content-Length": str(len(PAYLOAD))}
        return Response(body, headers=headers, direct_passthrough=True)

    httpserver.expect_request("/w.pth").respond_with_handler(cut_short)
    url = httpserver.url_for("/w.pth")
    with pytest.raises(DataNotFoundError, match="retrieval incomplete") as info:
        hub.fetch(NAME, origin=url)
    assert url in str(info.value)
    assert leftovers(cache) == []


def test_http_error_names_url_and_offline_route(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    httpserver.expect_request("/w.pth").respond_with_data("gone", status=404)
    url = httpserver.url_for("/w.pth")
    with pytest.raises(DataNotFoundError) as info:
        hub.fetch(NAME, origin=url, hint="Or set TLCOURSE_WEIGHTS.")
    message = str(info.value)
    assert url in message and "404" in message
    assert str(cache / pinned.fname) in message and pinned.sha256 in message
    assert message.endswith("Or set TLCOURSE_WEIGHTS.")
    assert leftovers(cache) == []


def test_connection_refused(cache: Path, pinned: hub.RemoteFile) -> None:
    url = closed_port_url()
    with pytest.raises(DataNotFoundError, match="refused") as info:
        hub.fetch(NAME, origin=url)
    assert url in str(info.value)
    assert leftovers(cache) == []


def test_corrupted_cached_file_is_replaced(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    cache.mkdir()
    (cache / pinned.fname).write_bytes(PAYLOAD[:10])  # e.g. copied by hand, half-way
    httpserver.expect_request("/w.pth").respond_with_data(PAYLOAD)
    path = hub.fetch(NAME, origin=httpserver.url_for("/w.pth"))
    assert path.read_bytes() == PAYLOAD and len(httpserver.log) == 1


def test_corrupted_cached_file_is_never_used_even_offline(
    cache: Path, pinned: hub.RemoteFile
) -> None:
    cache.mkdir()
    (cache / pinned.fname).write_bytes(PAYLOAD[:10])
    with pytest.raises(DataNotFoundError):
        hub.fetch(NAME, origin=closed_port_url())
    assert leftovers(cache) == []


def test_ctrl_c_during_download_leaves_nothing(
    cache: Path, pinned: hub.RemoteFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fname: str, origin: str, **kwargs: object) -> str:
        partial = Path(kwargs["cache_subdir"]) / fname
        partial.write_bytes(PAYLOAD[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.utils, "get_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        hub.fetch(NAME, origin="http://127.0.0.1:9/w.pth")
    assert leftovers(cache) == []


def test_concurrent_fetches_download_once(
    httpserver: HTTPServer, cache: Path, pinned: hub.RemoteFile
) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.3)
        return Response(PAYLOAD)

    httpserver.expect_request("/w.pth").respond_with_handler(slow)
    url = httpserver.url_for("/w.pth")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(hub.fetch(NAME, origin=url)))]
    threads.append(threading.Thread(target=lambda: results.append(hub.fetch(NAME, origin=url))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [cache / pinned.fname] * 2
    assert len(httpserver.log) == 1
