"""Every shipped spec runs offline at its default scale through the command
line, prints its headline, and `persona-exp show` summarizes the stored run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("persona-exp")
HEADLINES = {"dpf": "dpf_summary", "agreement": "agreement_pairs", "conditioning": "conditioning", "wikipersona": "wikipersona_conditions"}


@pytest.mark.parametrize("kind", sorted(HEADLINES))  # loo, the slowest, has its own CLI test
def test_spec_runs_and_shows(tmp_path, kind):
    spec = ROOT / "experiments" / f"{kind}.yaml"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    r = subprocess.run([str(EXE), "run", str(spec), "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    assert "calls: 0 cached" in r.stdout and "0 failed" in r.stdout
    show = subprocess.run([str(EXE), "show", "latest"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert show.returncode == 0, show.stderr
    assert "headline" in show.stdout and f"{HEADLINES[kind]} (" in show.stdout
