"""Your own photos: a small real subset of the flowers set trains, predicts and exports.

The subset is taken from ``../shared/data/flowers-256.tar`` (real Flickr photos of mixed sizes);
a few are re-saved as PNG, GIF and BMP so that every supported format is read.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tlcourse.errors import DataFormatError, TLCourseError
from tlcourse.photos import PhotoConfig, open_folder, train
from tlcourse.photos.folders import ImageFiles

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
#: Small and fast: 96 px squares cut from 110 px, a quick head, one fine-tuning epoch.
QUICK = PhotoConfig(
    image_size=96,
    resize_to=110,
    batch_size=16,
    head_epochs=20,
    head_learning_rate=3e-3,
    head_patience=5,
    finetune_epochs=1,
)


@pytest.fixture
def flowers_copy(flowers_small: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(flowers_small, tmp_path / "photos"))


@pytest.fixture(scope="session")
def trained(flowers_small: Path, weights_npz: Path, tmp_path_factory):
    """One quick run through the API, its model saved."""
    result = train(flowers_small, QUICK, weights=weights_npz, verbose=0, log=lambda line: None)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    result.model.save(path)
    return result, path


# --------------------------------------------------------------------------------------------
# Finding and checking the files
# --------------------------------------------------------------------------------------------


def test_mixed_sizes_and_formats_are_read_with_val_as_validation(flowers_small):
    folder = open_folder(flowers_small)
    assert folder.class_names == CLASSES
    assert len(folder.train) == 40 and len(folder.val) == 20 and folder.test is None
    assert folder.validation == "the val/ folder"
    suffixes = {Path(p).suffix for p in folder.train.paths}
    assert suffixes == {".jpg", ".png", ".gif", ".bmp"}
    sizes = {Image.open(p).size for p in folder.train.paths}
    assert len(sizes) > 3  # real photos of several sizes, none resized beforehand


def test_one_folder_per_class_gets_a_stratified_seeded_validation_split(flowers_small, tmp_path):
    flat = tmp_path / "flat"
    for cls in CLASSES:
        shutil.copytree(flowers_small / "train" / cls, flat / cls)
    folder = open_folder(flat, validation_split=0.25, seed=3)
    assert folder.val.counts() == dict.fromkeys(CLASSES, 2)
    assert not set(folder.train.paths) & set(folder.val.paths)
    again = open_folder(flat, validation_split=0.25, seed=3)
    assert again.val.paths == folder.val.paths
    assert open_folder(flat, validation_split=0.25, seed=4).val.paths != folder.val.paths


def test_an_archive_is_read_like_the_folder(flowers_small, tmp_path):
    archive = tmp_path / "flowers.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(flowers_small, arcname="flowers")
    folder = open_folder(archive)
    assert folder.class_names == CLASSES and len(folder.train) == 40
    assert [Path(p).name for p in folder.val.paths] == [
        Path(p).name for p in open_folder(flowers_small).val.paths
    ]


def test_a_corrupt_jpeg_and_a_non_image_are_skipped_and_named(flowers_copy):
    roses = flowers_copy / "train" / "roses"
    corrupt = roses / "cut-short.jpg"
    corrupt.write_bytes(next(roses.glob("*.jpg")).read_bytes()[:300])
    (roses / "notes.txt").write_text("not a photo")
    folder = open_folder(flowers_copy)
    assert str(corrupt) not in folder.train.paths
    assert folder.train.counts()["roses"] == 8
    lines = "\n".join(folder.describe())
    assert "cut-short.jpg" in lines and "could not be decoded" in lines
    assert "notes.txt" in lines and "not an image" in lines


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("one-class", "at least 2 classes"),
        ("empty-class", "has no images"),
        ("class-missing-in-val", "has no folder for tulips"),
        ("all-unreadable", "no readable image left"),
    ],
)
def test_a_folder_that_cannot_train_is_refused_naming_the_fix(flowers_copy, damage, named):
    if damage == "one-class":
        for cls in CLASSES[1:]:
            shutil.rmtree(flowers_copy / "train" / cls)
            shutil.rmtree(flowers_copy / "val" / cls)
    elif damage == "empty-class":
        for file in (flowers_copy / "val" / "roses").iterdir():
            file.unlink()
        (flowers_copy / "val" / "roses" / "README.txt").write_text("photos to come")
    elif damage == "class-missing-in-val":
        shutil.rmtree(flowers_copy / "val" / "tulips")
    else:
        for file in (flowers_copy / "val" / "daisy").iterdir():
            file.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataFormatError, match=named):
        open_folder(flowers_copy)


# --------------------------------------------------------------------------------------------
# Training, the saved model, prediction, export
# --------------------------------------------------------------------------------------------


def test_training_records_both_stages_and_beats_chance(trained):
    result, _ = trained
    assert len(result.head_history["loss"]) >= 1 and len(result.finetune_history["loss"]) == 1
    assert result.kept in ("head", "fine-tuned")
    assert result.val.num_examples == 20
    assert result.val.accuracy > 1.5 / len(CLASSES)  # 20 real photos, 5 classes


def test_the_same_seed_gives_the_same_numbers(flowers_small, weights_npz, trained):
    again = train(flowers_small, QUICK, weights=weights_npz, verbose=0, log=lambda line: None)
    first, _ = trained
    assert again.head_history == first.head_history
    assert again.finetune_history == first.finetune_history
    np.testing.assert_array_equal(again.val.confusion_matrix, first.val.confusion_matrix)


def test_the_saved_model_takes_raw_pixels_and_predicts_as_the_trained_network(trained):
    from tlcourse.photos.model import class_names_of, load, network_of
    from tlcourse.photos.pipeline import photo_dataset
    from tlcourse.photos.predict import predict

    result, path = trained
    loaded = load(path)
    assert class_names_of(loaded) == CLASSES
    files = result.folder.val
    network = network_of(result.model)
    expected = network.predict(
        photo_dataset(files, image_size=96, resize_to=110, batch_size=8).map(lambda x, y: x),
        verbose=0,
    )
    got = np.stack([p.probabilities for p in predict(loaded, files.paths, top=2)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.argmax(got, axis=1).tolist() == np.argmax(expected, axis=1).tolist()


@pytest.mark.parametrize("format_", ["savedmodel", "tflite"])
def test_export_round_trips(trained, tmp_path, format_):
    from tlcourse.photos.export import export

    _, path = trained
    model = tmp_path / "model.keras"
    shutil.copy(path, model)
    target, worst = export(model, format_)
    assert target.exists() and worst <= 1e-4
    labels = target / "labels.txt" if target.is_dir() else target.with_suffix(".labels.txt")
    assert labels.read_text().split() == list(CLASSES)
    with pytest.raises(FileExistsError):
        export(model, format_)


def test_a_file_that_is_not_a_model_of_ours_gets_a_clear_error(tmp_path, trained):
    from tlcourse.photos.predict import predict

    fake = tmp_path / "model.keras"
    fake.write_text("not a model")
    with pytest.raises(DataFormatError, match="written by `tlcourse train`"):
        predict(fake, [])
    _, path = trained
    with pytest.raises(DataFormatError, match="could not be decoded"):
        predict(path, [str(fake)])


def test_training_settings_are_checked_first():
    with pytest.raises(ValueError, match="resize_to"):
        PhotoConfig(image_size=224, resize_to=200)
    with pytest.raises(ValueError, match="at least 32"):
        PhotoConfig(image_size=16, resize_to=20)


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------


def test_the_cli_trains_predicts_and_exports(flowers_small, weights_npz, tmp_path, monkeypatch):
    from tlcourse.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["train", str(flowers_small), "--image-size", "96", "--head-epochs", "2"]
    args += ["--finetune-epochs", "1", "--weights", str(weights_npz)]
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    out = tmp_path / "runs" / "train" / "flowers-seed0"
    record = json.loads((out / "record.json").read_text())
    assert record["data"]["class_names"] == list(CLASSES)
    assert record["provenance"]["seed"] == 0 and record["provenance"]["data"]["sha256"]
    assert record["val"]["accuracy"] == pytest.approx(
        np.trace(record["val"]["confusion_matrix"]) / 20
    )
    assert (out / "figures" / "curves.png").stat().st_size > 0
    assert (out / "figures" / "confusion.png").stat().st_size > 0
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "not overwritten" in again.output

    photo = str(next((flowers_small / "val" / "roses").glob("*.jpg")))
    shown = runner.invoke(main, ["predict", str(out / "model.keras"), photo, "--top", "2"])
    assert shown.exit_code == 0, shown.output
    line = shown.output.strip().splitlines()[-1]
    assert line.startswith(photo) and line.count("%") == 2

    exported = runner.invoke(main, ["export", str(out / "model.keras"), "--format", "tflite"])
    assert exported.exit_code == 0, exported.output
    assert (out / "model.tflite").exists()


def test_an_interrupted_run_resumes_only_with_the_same_settings(flowers_small, tmp_path):
    from tlcourse.photos.cli import _check_resume

    out = tmp_path / "run"
    _check_resume(out, {"seed": 0})
    _check_resume(out, {"seed": 2})  # stopped before any checkpoint: nothing to resume, replaced
    _check_resume(out, {"seed": 0})
    (out / "checkpoint" / "backup").mkdir()  # fine-tuning had begun: an interrupted run
    _check_resume(out, {"seed": 0})  # same settings: resumes
    with pytest.raises(TLCourseError, match="other settings"):
        _check_resume(out, {"seed": 1})


def test_image_files_fingerprint_changes_when_a_file_does(flowers_copy):
    files = open_folder(flowers_copy, check_images=False).train
    before = files.fingerprint()
    Path(files.paths[0]).write_bytes(Path(files.paths[1]).read_bytes())
    assert ImageFiles(files.paths, files.labels, files.class_names).fingerprint() != before


def test_cached_features_are_reused_only_by_the_same_preprocessing(
    flowers_small, weights_npz, tmp_path, monkeypatch
):
    from tlcourse.photos import pipeline

    store = tmp_path / "features"
    quick = PhotoConfig(image_size=64, resize_to=72, head_epochs=1, finetune_epochs=0)
    run = {"weights": weights_npz, "verbose": 0, "log": lambda line: None, "feature_store": store}
    assert not train(flowers_small, quick, **run).notes
    again = train(flowers_small, quick, **run)
    assert any("read from the feature store" in note for note in again.notes)
    monkeypatch.setattr(pipeline, "PREPROCESSING_VERSION", pipeline.PREPROCESSING_VERSION + 1)
    assert not train(flowers_small, quick, **run).notes  # computed again, not reused


def test_predict_names_an_unreadable_image_and_still_predicts_the_others(trained, tmp_path):
    from tlcourse.cli import main

    result, path = trained
    (tmp_path / "notes.txt").write_text("not a photo")
    webp = tmp_path / "photo.webp"
    Image.open(result.folder.val.paths[0]).save(webp)
    shown = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "notes.txt"), str(webp)])
    assert shown.exit_code == 1
    assert "notes.txt could not be decoded as an image (Unknown image file format" in shown.output
    assert "function_node" not in shown.output
    assert f"{webp}: " in shown.output
