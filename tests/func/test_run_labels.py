"""Runs a researcher can find again: names and notes, and an output folder
that cannot hold runs is a spec error before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

from persona_exp.cli import main as cli

SPEC = str(Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml")
TINY = ["--set", "population.size=300", "--set", "experiment.n_personas=3", "--set", "experiment.n_questions=2",
        "--set", "experiment.attributes=[age, sex]", "--set", "experiment.n_resamples=100", "--no-progress"]


def test_name_and_note_are_stored_shown_and_usable_as_references(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli(["run", SPEC, *TINY, "--name", "pilot", "--note", "three personas, to see the prompts"]) == 0
    assert cli(["run", SPEC, *TINY, "--set", "experiment.n_personas=4"]) == 0
    capsys.readouterr()
    assert cli(["runs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["note"]) for r in rows] == [("pilot", "three personas, to see the prompts"), (None, None)]
    assert cli(["show", "pilot", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["manifest"]
    assert shown["run_id"] == rows[0]["run"] and shown["note"] == "three personas, to see the prompts"
    assert cli(["show", "pilot"]) == 0
    assert "[pilot]" in capsys.readouterr().out
    assert cli(["run", SPEC, *TINY, "--name", "latest~1"]) == 2
    assert "run name" in capsys.readouterr().err


def test_output_dir_that_is_a_file_is_a_spec_error_with_its_location(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("not a folder")
    spec = tmp_path / "loo.yaml"
    spec.write_text(Path(SPEC).read_text() + "output:\n  dir: results\n")
    line = len(Path(SPEC).read_text().splitlines()) + 2
    assert cli(["plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line}" in err and "output.dir: results is a file" in err and "Traceback" not in err
    assert cli(["run", str(spec), *TINY, "--set", "output.dir=ok", "--set", "output.cache=results/cache.sqlite"]) == 2
    assert "output.cache: results/cache.sqlite is inside results, which is a file" in capsys.readouterr().err
    assert (tmp_path / "results").read_text() == "not a folder"
