"""`persona-exp plan` prices calls from litellm's bundled table, offline, and says
"unknown" for a model it has no price for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "conditioning.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
SMALL = ["--set", "population.size=40", "--set", "experiment.n_personas=5", "--set", "experiment.n_questions=3"]


def plan(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), "plan", str(SPEC), *SMALL, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_known_price_unknown_price_and_sim(tmp_path):
    priced = json.loads(plan(tmp_path, "--set", "models.critic.model=openai/gpt-4o-mini", "--json").stdout)
    critic = [s for s in priced["steps"] if s["step"].startswith("critic")]
    assert critic and all(s["est_cost_usd"] > 0 and s["est_tokens"] > 0 for s in critic)
    assert all(s["est_cost_usd"] == 0 for s in priced["steps"] if s["model"].startswith("sim/"))
    assert priced["est_cost_usd"] == sum(s["est_cost_usd"] for s in priced["steps"])
    assert priced["to_run"] == priced["total_calls"]  # nothing cached yet

    unknown = plan(tmp_path, "--set", "models.critic.model=openai/no-such-model-xyz")
    assert unknown.returncode == 0 and "estimated cost unknown" in unknown.stdout
