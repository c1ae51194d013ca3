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
    assert unknown.returncode == 0 and "cost unknown (no price for openai/no-such-model-xyz)" in unknown.stdout


LOO = ROOT / "experiments" / "loo.yaml"
LOO_SMALL = ["--set", "population.size=300", "--set", "experiment.attributes=[age,sex,religion]", "--set", "experiment.n_personas=6",
             "--set", "experiment.n_questions=5", "--set", "experiment.n_resamples=200"]


def test_loo_estimate_is_within_30_percent_of_the_run(tmp_path):
    """On a fresh cache the plan's token estimate (slots counted as the
    expected answers of the steps that fill them) is within +-30% of what the
    run then reports, and the run's own pre-flight estimate, stored in the
    manifest, is too."""
    run = lambda *a: subprocess.run([str(EXE), *a, str(LOO), *LOO_SMALL, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    p = run("plan")
    assert p.returncode == 0, p.stderr
    est = json.loads(p.stdout)
    assert est["to_run"] == est["total_calls"] > 0
    r = run("run")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["counts"]
    actual = counts["prompt_tokens"] + counts["completion_tokens"]
    assert 0.7 <= est["est_tokens"] / actual <= 1.3, (est["est_tokens"], actual)
    manifest = json.loads(next((tmp_path / ".persona-exp" / "runs" / "loo").glob("*/manifest.json")).read_text())
    assert manifest["estimate"]["tokens"] == est["est_tokens"] and manifest["estimate"]["calls_to_run"] == counts["ran"]
    # After the run everything is cached: nothing to run, nothing estimated.
    again = json.loads(run("plan").stdout)
    assert again["to_run"] == 0 and again["est_tokens"] == 0
    # A new judge reads the cached answers: only its calls are estimated, their slots hold the cached texts.
    effect = ("--set", "models.judge.sim.effects.religion=4.0")
    judge = json.loads(run("plan", *effect).stdout)
    assert [s["step"] for s in judge["steps"] if s["to_run"]] == ["judge"]
    assert next(s for s in judge["steps"] if s["step"] == "judge")["answer_lengths"] == "simulated pilot (n=20)"
    rerun = json.loads(run("run", *effect).stdout)["counts"]
    assert 0.7 <= judge["est_tokens"] / (rerun["prompt_tokens"] + rerun["completion_tokens"]) <= 1.3


def test_real_model_prompts_are_counted_with_its_tokenizer(tmp_path, monkeypatch):
    """A priced model's prompt tokens are litellm's count of its rendered
    messages; its answers are estimated at max_tokens when that is set, and at a
    few tokens when a strict parser reads a label (the judge's A or B)."""
    import litellm

    from persona_exp.pipeline import prepare

    model = "openai/gpt-4o-mini"
    sets = [*LOO_SMALL, "--set", f"models.generator.model={model}", "--set", "models.generator.max_tokens=50", "--set", f"models.judge.model={model}"]
    r = subprocess.run([str(EXE), "plan", str(LOO), *sets, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    steps = {s["step"]: s for s in json.loads(r.stdout)["steps"]}
    monkeypatch.chdir(tmp_path)
    prep = prepare(LOO, [s for s in sets if s != "--set"], dry=True, progress=False)
    base = [c for c in prep.design.plan.calls.values() if c.step == "base_answer"]
    assert steps["base_answer"]["est_prompt_tokens"] == sum(litellm.token_counter(model=model, messages=c.render({})) for c in base)
    assert steps["base_answer"]["est_completion_tokens"] == 50 * len(base) and steps["base_answer"]["answer_lengths"].startswith("max_tokens")
    judge = steps["judge"]
    assert judge["answer_lengths"] == "short choice answer" and judge["est_completion_tokens"] <= 5 * judge["to_run"]
    # The judge reads two answers of at most 50 tokens each on top of its own text.
    assert judge["est_prompt_tokens"] > 0 and all(s["est_cost_usd"] > 0 for s in steps.values())


def test_staged_simulated_spec_is_planned_to_the_end_without_storing(tmp_path):
    """wikipersona's plan depends on what the generator writes (questions,
    candidates, brackets). With simulated roles `plan` answers those staged
    calls in memory, stores nothing, and plans and estimates the whole run."""
    spec = ROOT / "experiments" / "wikipersona.yaml"
    run = lambda *a: subprocess.run([str(EXE), *a, str(spec), "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    p = run("plan")
    assert p.returncode == 0, p.stderr
    est = json.loads(p.stdout)
    assert est["pending"] is None and est["simulated_staged_calls"] > 0
    assert not (tmp_path / ".persona-exp" / "cache.sqlite").exists()
    r = run("run")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)["counts"]
    assert est["total_calls"] == counts["calls"] and est["to_run"] == counts["ran"]
    assert 0.7 <= est["est_tokens"] / (counts["prompt_tokens"] + counts["completion_tokens"]) <= 1.3
