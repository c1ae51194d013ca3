"""Roles configured identically ask identical calls: the plan shares them and
says so, instead of failing on a step left with no call of its own."""

from __future__ import annotations

import json

from persona_exp.cli import main as cli

SPEC = """\
name: agr
models:
  judge_a: {model: sim/judge}
  judge_b: {model: sim/judge}
  judge_c: {model: sim/judge, temperature: 0.5}
  generator: {model: sim/generator}
population: {source: census, size: 300}
experiment:
  kind: agreement
  n_personas: 5
  n_questions: 3
"""


def test_identical_judges_share_calls_and_the_plan_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(SPEC)
    assert cli(["plan", "a.yaml", "--json"]) == 0
    steps = {s["step"]: s for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["judge:judge_b"]["calls"] == 0 and steps["judge:judge_b"]["requested"] == steps["judge:judge_a"]["calls"] > 0
    assert steps["judge:judge_c"]["calls"] == steps["judge:judge_a"]["calls"]  # other settings: calls of its own
    assert cli(["plan", "a.yaml"]) == 0
    assert "judge:judge_b: its" in capsys.readouterr().out
