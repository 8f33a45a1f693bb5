"""A photo run's output folder: the model, its record with provenance, its figures.

``<out>/model.keras`` (the saved model), ``<out>/record.json`` (settings, data, every epoch,
validation and test scores, provenance: command, commit, versions, data and weights sha256,
seed, machine, date, times), ``<out>/labels.txt`` and ``<out>/figures/`` (training curves of
both stages, the validation confusion matrix). Files are written whole (temporary file, then
rename). A folder that already holds a finished run is never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from tlcourse.errors import TLCourseError
from tlcourse.photos.recipe import PhotoResult

#: ``kind`` of a photo run's record (the study's records are ``tlcourse-run``).
RECORD_KIND = "tlcourse-photo-run"
SCHEMA_VERSION = 1
MODEL_FILE = "model.keras"
RECORD_FILE = "record.json"
LABELS_FILE = "labels.txt"


class RunExistsError(TLCourseError, FileExistsError):
    """The output folder already holds a finished run."""


def check_out(out: str | os.PathLike) -> Path:
    """``out`` as a Path, if no finished run is in it (an interrupted one resumes)."""
    out = Path(out)
    if (out / RECORD_FILE).exists() or (out / MODEL_FILE).exists():
        raise RunExistsError(
            f"{out} already holds a finished run ({out / MODEL_FILE}); it is not overwritten. "
            "Give another --out folder, or delete that one to train again."
        )
    return out


def _merged_history(result: PhotoResult) -> dict[str, list[float]]:
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    return {k: result.head_history.get(k, []) + result.finetune_history.get(k, []) for k in keys}


def record(result: PhotoResult, *, weights_path: str | os.PathLike) -> dict:
    """The JSON record of ``result``: what was run, on what, with which outcome, and how."""
    from tlcourse import provenance

    folder = result.folder
    base = provenance.collect(
        seed=result.config.seed, data_path=folder.source, weights_path=weights_path
    )
    head_val = result.head_history.get("val_accuracy", [])
    tuned_val = result.finetune_history.get("val_accuracy", [])
    return {
        "kind": RECORD_KIND,
        "schema": SCHEMA_VERSION,
        "config": result.config.to_dict(),
        "data": {
            "source": str(folder.source),
            "class_names": list(folder.class_names),
            "sizes": {name: len(files) for name, files in folder.splits().items()},
            "train_per_class": folder.train.counts(),
            "validation": folder.validation,
            "skipped": [{"path": p, "reason": r} for p, r in folder.skipped],
        },
        "stages": {
            "head": {
                "history": result.head_history,
                "epochs_run": len(head_val),
                "best_epoch": (head_val.index(max(head_val)) + 1) if head_val else None,
                "val_accuracy": result.head_val.accuracy,
            },
            "finetune": {
                "history": result.finetune_history,
                "epochs_run": len(tuned_val),
                "best_epoch": (tuned_val.index(max(tuned_val)) + 1) if tuned_val else None,
            },
        },
        "kept": result.kept,
        "val": result.val.to_dict(),
        "test": result.test.to_dict() if result.test is not None else None,
        "notes": result.notes,
        "provenance": {**base, "times_s": result.times_s},
    }


def write_run(result: PhotoResult, out: str | os.PathLike, *, weights_path) -> Path:
    """Write the model, the record, the labels and the figures of ``result`` into ``out``."""
    from tlcourse import plots
    from tlcourse.files import write_json_atomic, write_text_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{MODEL_FILE}.partial.keras"
    result.model.save(partial)
    os.replace(partial, out / MODEL_FILE)
    write_text_atomic(out / LABELS_FILE, "".join(f"{name}\n" for name in result.class_names))
    fig = plots.plot_history(
        _merged_history(result),
        title=f"head ({len(result.head_history.get('loss', []))} epochs), then fine-tuning",
    )
    plots.save_figure(fig, out / "figures" / "curves.png")
    fig = plots.plot_confusion_matrix(
        result.val.confusion_matrix,
        result.class_names,
        title=f"Validation ({result.kept} model)",
    )
    plots.save_figure(fig, out / "figures" / "confusion.png")
    return write_json_atomic(out / RECORD_FILE, record(result, weights_path=weights_path))
