"""The exercises chapter reads each notebook's parts and points from the notebook itself."""

from __future__ import annotations

import json
from pathlib import Path

from tlcourse.book import exercise_outline, outline_table

ROOT = Path(__file__).resolve().parents[1]


def test_outline_sums_nbgrader_points_per_section(tmp_path):
    def cell(kind, text, **nbgrader):
        meta = {"nbgrader": nbgrader} if nbgrader else {}
        return {"cell_type": kind, "source": [text], "metadata": meta}

    notebook = {
        "cells": [
            cell("markdown", "# Assignment 9: testing\n\nIntro."),
            cell("code", "setup = 1"),
            cell("markdown", "## 9.1 First"),
            cell("code", "check()", grade=True, solution=False, points=2),
            cell("code", "check_more()", grade=True, solution=False, points=1),
            cell("markdown", "## 9.2 Explain"),
            cell("markdown", "YOUR ANSWER", grade=True, solution=True, points=2),
            cell("markdown", "## 9.3 Accuracy"),
            cell("markdown", "set by the grader", points=6),
            cell("markdown", "## 9.4 Hand in"),
        ]
    }
    path = tmp_path / "nine.ipynb"
    path.write_text(json.dumps(notebook))
    title, parts = exercise_outline(path)
    assert title == "Assignment 9: testing"
    assert [(p.title, p.points, p.graded_by) for p in parts] == [
        ("9.1 First", 3.0, "self-check and hidden tests"),
        ("9.2 Explain", 2.0, "by hand"),
        ("9.3 Accuracy", 6.0, "the grader's own evaluation"),
        ("9.4 Hand in", 0.0, "not graded"),
    ]
    assert outline_table(parts).splitlines()[-1] == "| **Total** | **11** | |"


def test_every_exercise_has_graded_parts():
    for notebook in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        title, parts = exercise_outline(notebook)
        assert title.startswith("Assignment"), notebook
        assert sum(p.points for p in parts) >= 10, notebook
