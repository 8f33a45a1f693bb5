"""`tlcourse info` reads and checks the weights it finds: a damaged file is named, exit status 1."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from tlcourse.cli import main

WEIGHTS_SHA256 = "ed27ae9b778d70c6d8ab90416697b2dc0bb0d7fbc3573daf18a27c28928d09be"


def info(*args):
    return CliRunner().invoke(main, ["info", *args])


def weights_line(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("weights:")]
    return line


def test_the_real_weights_are_valid(weights_npz):
    run = info("--weights", str(weights_npz))
    assert run.exit_code == 0, run.output
    assert weights_line(run.output) == (
        f"weights: {weights_npz} (valid: SqueezeNet 1.1, 52 tensors, sha256 {WEIGHTS_SHA256})"
    )
    assert "versions:" in run.output


def test_a_truncated_weights_file_is_unusable(weights_npz, tmp_path):
    truncated = tmp_path / "squeezenet1_1_imagenet.npz"
    truncated.write_bytes(weights_npz.read_bytes()[:2_000_000])  # a download cut short
    run = info("--weights", str(truncated))
    assert run.exit_code == 1, run.output
    line = weights_line(run.output)
    assert line.startswith(f"weights: {truncated} is unusable: ")
    assert "not a readable .npz" in line and "Replace it" in line
    assert "valid:" not in run.output
    assert "versions:" in run.output  # everything is said before the failing exit
    assert "allow_pickle" not in run.output


def test_a_text_file_named_npz_is_unusable(tmp_path):
    text = tmp_path / "x.npz"
    text.write_text("these are not weights\n")
    run = info("--weights", str(text))
    assert run.exit_code == 1, run.output
    line = weights_line(run.output)
    assert line.startswith(f"weights: {text} is unusable: ")
    assert "an .npz is a zip file" in line
    assert "allow_pickle" not in run.output and "pickle" not in line


def test_an_npz_of_other_arrays_is_unusable(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros((3, 3), np.float32))
    run = info("--weights", str(other))
    assert run.exit_code == 1, run.output
    line = weights_line(run.output)
    assert line.startswith(f"weights: {other} is unusable: ")
    assert "missing tensor 'features.0.weight'" in line
    assert "is not SqueezeNet 1.1's ImageNet state_dict" in line


def test_a_damaged_file_named_by_the_variable_is_unusable(tmp_path, monkeypatch):
    damaged = tmp_path / "x.npz"
    damaged.write_bytes(b"\x00" * 100)
    monkeypatch.setenv("TLCOURSE_WEIGHTS", str(damaged))
    run = info()
    assert run.exit_code == 1, run.output
    assert weights_line(run.output).startswith(f"weights: {damaged} is unusable: ")


def test_a_damaged_cached_copy_is_unusable(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "squeezenet1_1_imagenet.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    monkeypatch.setenv("TLCOURSE_CACHE", str(cache))
    run = info()
    assert run.exit_code == 1, run.output
    line = weights_line(run.output)
    assert line.startswith(f"weights: {cache / 'squeezenet1_1_imagenet.npz'} is unusable: ")
    assert "delete it if it is tlcourse's cached copy" in line


def test_no_weights_at_all_is_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_CACHE", str(tmp_path))
    run = info()
    assert run.exit_code == 0, run.output
    assert weights_line(run.output).startswith("weights: not found.")
    assert "TLCOURSE_WEIGHTS" in run.output


def data_line(output: str) -> str:
    lines = output.split("\nweights:")[0].split("data:", 1)
    return lines[1].strip()


def test_a_folder_of_photos_is_usable_by_train_and_said_not_cifar(flowers_small, weights_npz):
    run = info("--data", str(flowers_small), "--weights", str(weights_npz))
    assert run.exit_code == 0, run.output
    line = data_line(run.output)
    assert "5 classes (daisy, dandelion, roses, sunflowers, tulips)" in line
    assert "train 40, val 20" in line and "Usable by `tlcourse train`" in line
    assert "not by `reproduce`" in line


def test_cifar_is_usable_by_reproduce(archive, weights_npz):
    run = info("--data", str(archive), "--weights", str(weights_npz))
    assert run.exit_code == 0, run.output
    assert "CIFAR-10: usable by `tlcourse reproduce`" in data_line(run.output)


def test_a_folder_holding_no_dataset_is_unusable_and_fails(tmp_path, weights_npz):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("find photos")
    run = info("--data", str(tmp_path), "--weights", str(weights_npz))
    assert run.exit_code == 1
    line = data_line(run.output)
    assert "is unusable: not CIFAR-10" in line and "not a folder of photos" in line
