"""End to end through the command line: run, rerun from cache, edit, show, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
SMALL = [
    "--set", "population.size=300",
    "--set", "experiment.attributes=[age, sex, marital_status, religion]",
    "--set", "experiment.n_personas=8",
    "--set", "experiment.n_questions=6",
    "--set", "experiment.n_resamples=200",
]


def cli(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def calls_line(out: str) -> tuple[int, int, int, int]:
    line = next(ln for ln in out.splitlines() if " calls: " in ln)
    total, rest = line.split(" calls: ")
    parts = [int(p.strip().split()[0]) for p in rest.split(",")]
    return int(total), parts[0], parts[1], parts[2]


def test_run_rerun_edit_show(tmp_path):
    first = cli(tmp_path, "run", str(SPEC), *SMALL, "--no-progress")
    assert first.returncode == 0, first.stderr
    total, cached, ran, failed = calls_line(first.stdout)
    assert cached == 0 and ran == total and failed == 0
    assert "Leave-one-out" in first.stdout

    again = cli(tmp_path, "run", str(SPEC), *SMALL, "--no-progress")
    assert calls_line(again.stdout) == (total, total, 0, 0)

    edited = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.judge_template=Pretend to be this person:\n{persona}\n\nQuestion: {question}\n\nResponse A: {response_a}\n\nResponse B: {response_b}\n\nWhich do you prefer? Answer with A or B.", "--no-progress", "--json")
    summary = json.loads(edited.stdout)
    steps = summary["counts"]["by_step"]
    assert steps["judge"]["ran"] == steps["judge"]["calls"] > 0
    assert all(steps[s]["ran"] == 0 for s in ("base_answer", "critique", "revise"))

    runs = cli(tmp_path, "runs", "--json")
    assert len(json.loads(runs.stdout)) == 3
    show = cli(tmp_path, "show", "latest")
    assert show.returncode == 0 and "loo_attributes" in show.stdout and "calls:" in show.stdout

    plan = cli(tmp_path, "plan", str(SPEC), *SMALL, "--set", "experiment.n_questions=7", "--json")
    p = json.loads(plan.stdout)
    assert p["to_run"] > 0 and p["to_run"] < p["total_calls"]
    assert any(ch["field"] == "experiment.n_questions" for ch in p["changed_since_last_run"])
    assert any(ch["field"] == "experiment.judge_template" for ch in p["changed_since_last_run"])
    items = {i["call"]: i for i in p["changed_items"]}
    # The last run used another judge prompt: every shared item's judge calls changed, no answer did.
    assert items["judge_with"]["changed"] == items["judge_with"]["items"] > 0
    assert items["base"]["changed"] == 0 and items["revise"]["changed"] == 0


def test_fake_api_key_never_reaches_disk_or_output(tmp_path):
    env = {"OPENAI_API_KEY": "sk-live-SECRET-do-not-store-123456", "ANTHROPIC_API_KEY": "ant-SECRET-987654321"}
    r = cli(tmp_path, "run", str(SPEC), *SMALL, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    for text in (r.stdout, r.stderr):
        assert "SECRET" not in text
    for path in (tmp_path / ".persona-exp").rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path


@pytest.mark.parametrize(
    "override, expected",
    [
        ("experiment.n_personas=-3", "experiment.n_personas"),
        ("models.judge.temprature=0", "models.judge.temprature: unknown key"),
        ("models.critic.model=sim/judge", "unknown model role"),
        ("seed=abc", "seed"),
    ],
)
def test_bad_specs_exit_2_with_located_message(tmp_path, override, expected):
    r = cli(tmp_path, "run", str(SPEC), "--set", override)
    assert r.returncode == 2
    assert expected in r.stderr and "Traceback" not in r.stderr


def test_bad_yaml_is_located(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("  kind: loo", "  kind: loo\n   attributes: [oops"))
    r = cli(tmp_path, "run", str(bad))
    assert r.returncode == 2 and f"{bad}:" in r.stderr and "not valid YAML" in r.stderr
