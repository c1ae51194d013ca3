"""Settings that make a real model's answers alike are said before anything is
sent: `plan` shows them, and a run records them among its notes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from persona_exp.pipeline import prepare

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("persona-exp")
WIKI = ROOT / "experiments" / "wikipersona.yaml"
COND = ROOT / "experiments" / "conditioning.yaml"


def _warned(prep, words: str) -> bool:
    return any(w.startswith("WARNING") and words in w for w in prep.warnings) and any(words in n for n in prep.design.notes)


def test_plan_warns_of_candidates_at_temperature_0_even_before_a_real_generator_has_answered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = ["population.size=4", "experiment.n_personal=2", "experiment.n_divergent=2"]
    assert not _warned(prepare(WIKI, small, dry=True, progress=False, simulate=True), "temperature 0")
    assert _warned(prepare(WIKI, [*small, "experiment.candidate_temperature=0"], dry=True, progress=False, simulate=True), "candidates")
    # A real generator: the plan stops at its questions (not answered yet), and the warning is still there.
    real = prepare(WIKI, [*small, "experiment.candidate_temperature=0", "models.generator.model=openai/some-model",
                          "models.generator.api_base=http://127.0.0.1:9/v1"], dry=True, progress=False)
    assert real.pending is not None and _warned(real, "candidates")


def test_plan_warns_of_several_samples_at_temperature_0(tmp_path):
    r = subprocess.run([str(EXE), "plan", str(COND), "--set", "experiment.samples=3", "--set", "experiment.pass_k=[1, 3]"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "WARNING: 3 samples per item" in r.stdout and "pass@k equals pass@1" in r.stdout
    warm = subprocess.run([str(EXE), "plan", str(COND), "--set", "experiment.samples=3", "--set", "models.generator.temperature=0.7"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0 and "WARNING" not in warm.stdout
