"""The student edition: nbgrader's generate step removes solutions and hidden tests; run as
a submission, the student edition scores zero with every answer "not answered", and the
teacher edition full marks (nbgrader autograde)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from studylib.book import runner

nbgrader_apps = pytest.importorskip("nbgrader.apps")
CHAPTER = "01_theory"  # the quickest chapter to execute (no model to train)


def test_student_edition_has_no_solutions_and_autograde_scores_both_editions(tmp_path, monkeypatch):
    course = tmp_path / "course"
    editions = runner.assignments(course)
    assert sorted(editions) == [p.stem for p in runner.chapters()[1:]]  # every chapter but the overview
    for chapter, edition in editions.items():
        text = edition.read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, chapter
        assert text.count("raise NotImplementedError()") >= 2, chapter
    student = editions[CHAPTER]
    teacher = course / "source" / CHAPTER / f"{CHAPTER}.ipynb"
    text = student.read_text()
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "while not annulus.conditions_hold", "Delta_50 = high"):
        assert secret not in text and secret in teacher.read_text()
    assert text.count("raise NotImplementedError()") == 2

    for who, edition in (("teacher", teacher), ("student", student)):
        submitted = course / "submitted" / who / CHAPTER / f"{CHAPTER}.ipynb"
        submitted.parent.mkdir(parents=True)
        shutil.copy(edition, submitted)
    monkeypatch.setenv("STUDYLIB_PROFILE", "smoke")
    monkeypatch.setenv("STUDYLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDYLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    config.ExecutePreprocessor.timeout = 600
    api = nbgrader_apps.NbGraderAPI(config=config)
    scores = {}
    for who in ("teacher", "student"):
        result = api.autograde(CHAPTER, who)
        assert result["success"], result.get("log")
        submission = api.get_submission(CHAPTER, who)
        scores[who] = (submission["score"], submission["max_score"])
    assert scores["teacher"] == (2.0, 2.0) and scores["student"] == (0.0, 2.0)

    graded = nbformat.read(course / "autograded" / "student" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    errors = {
        cell.metadata["nbgrader"]["grade_id"]: [o for o in cell.outputs if o.output_type == "error"]
        for cell in graded.cells
        if "nbgrader" in cell.metadata
    }
    for grade_id, raised in errors.items():
        (error,) = raised
        if grade_id.endswith("answer"):
            assert error.ename == "NotImplementedError"
        else:
            assert error.ename == "NotAnswered" and "not answered" in error.evalue
