"""A run whose model always fails: exit 1, failures listed, nothing cached,
no secret anywhere; once the server recovers, a rerun finishes the work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from persona_exp.execute import CallCache

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")


def test_failing_server_exit_1_then_recovery(tmp_path, openai_server):
    state, url = openai_server
    state.fail_status = 500
    args = [
        "run", str(SPEC), "--no-progress",
        "--set", "population.size=200", "--set", "experiment.attributes=[age, sex]",
        "--set", "experiment.n_personas=3", "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100",
        "--set", "models.generator.model=sim/generator",
        "--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}",
        "--set", "models.judge.max_retries=1",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-FAKEKEY-0123456789abcdef"}
    r = subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 1, r.stderr
    assert "failed: judge" in r.stderr and "500" in r.stderr
    assert " 0 failed" not in r.stdout
    with CallCache(tmp_path / ".persona-exp" / "cache.sqlite") as cache:
        # Only the simulated generator's answers are cached; no failed judge call was stored as an answer.
        assert set(cache.stats()["by_model"]) == {"sim/generator"}
    for text in (r.stdout, r.stderr):
        assert "FAKEKEY" not in text
    for path in (tmp_path / ".persona-exp").rglob("*"):
        if path.is_file():
            assert b"FAKEKEY" not in path.read_bytes(), path

    state.fail_status = None
    state.reply = "A"
    again = subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    line = next(ln for ln in again.stdout.splitlines() if " calls: " in ln)
    assert line.endswith(" 0 failed") and " 0 run" not in line
