"""`run --max-cost` and `run --limit` against a local OpenAI-compatible server
whose model has a known price (gpt-4o-mini in litellm's bundled table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from persona_exp.execute import CallCache
from persona_exp.execute.budget import price

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
MODEL = "openai/gpt-4o-mini"
# 1 attribute x 2 personas x 2 versions x 2 questions = 8 judge calls
SMALL = ["--set", "population.size=200", "--set", "experiment.attributes=[age]", "--set", "experiment.n_personas=2",
         "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100", "--set", "models.generator.model=sim/generator"]
JUDGE_CALLS = 8


def _run(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    args = ["run", str(SPEC), "--no-progress", *SMALL, "--set", f"models.judge.model={MODEL}", "--set", f"models.judge.api_base={url}",
            "--set", "models.judge.concurrency=1", *extra]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-FAKEKEY-0123456789abcdef"}
    return subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def _judge_rows(tmp_path: Path) -> int:
    with CallCache(tmp_path / ".persona-exp" / "cache.sqlite") as cache:
        return cache.stats()["by_model"].get("gpt-4o-mini", 0)


def _manifests(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / ".persona-exp" / "runs").glob("*/*/manifest.json"))]


def test_max_cost_refuses_to_start_above_the_estimate(tmp_path, openai_server):
    state, url = openai_server
    in_price, _ = price(MODEL)
    # The 8 judge prompts hold a persona, a question and two answers: well over 100 tokens each.
    r = _run(tmp_path, url, "--max-cost", f"{JUDGE_CALLS * 100 * in_price:.10f}")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--max-cost" in r.stderr and "estimated at $" in r.stderr and "over the budget" in r.stderr and "Traceback" not in r.stderr
    assert state.requests == [] and not _manifests(tmp_path)


def test_max_cost_stops_when_spending_reaches_it_and_a_rerun_continues(tmp_path, openai_server):
    """Every answer reports 100,000 prompt tokens, so actual spending outruns
    the estimate: $0.015 a call at gpt-4o-mini's price. With a budget of
    $0.02 the second call reaches it; the rest are not sent, the two answers
    are cached, the run is stored as stopped for budget and exits 1."""
    state, url = openai_server
    state.reply = lambda body: {"content": "A", "usage": {"prompt_tokens": 100_000, "completion_tokens": 1, "total_tokens": 100_001}}
    in_price, out_price = price(MODEL)
    per_call = 100_000 * in_price + out_price
    r = _run(tmp_path, url, "--max-cost", "0.02")
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(state.requests) == 2 == _judge_rows(tmp_path)
    assert "stopped for budget" in r.stdout and f"{JUDGE_CALLS - 2} calls were not sent" in r.stdout
    (m,) = _manifests(tmp_path)
    assert m["budget"]["stopped"] is True and m["budget"]["calls_not_sent"] == JUDGE_CALLS - 2
    assert abs(m["budget"]["spent_usd"] - 2 * per_call) < 1e-9 and abs(m["counts"]["cost"] - 2 * per_call) < 1e-9
    assert m["counts"]["failures"].get("budget") == JUDGE_CALLS - 2

    again = _run(tmp_path, url, "--max-cost", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(state.requests) == JUDGE_CALLS  # only the calls not sent before
    assert _manifests(tmp_path)[-1]["budget"]["stopped"] is False


def test_max_cost_needs_a_price(tmp_path, openai_server):
    state, url = openai_server
    r = _run(tmp_path, url, "--max-cost", "1", "--set", "models.judge.model=openai/no-such-model-xyz")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert state.requests == []


def test_limit_runs_the_first_calls_of_each_step(tmp_path, openai_server):
    state, url = openai_server
    r = _run(tmp_path, url, "--limit", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(state.requests) == 3 == _judge_rows(tmp_path)
    assert "smoke run (--limit 3)" in r.stdout
    (m,) = _manifests(tmp_path)
    by_step = m["counts"]["by_step"]
    assert by_step["judge"]["calls"] == 3 and all(s["calls"] <= 3 for s in by_step.values())
    assert m["limit"]["n"] == 3 and m["limit"]["calls_left_out"] > 0
    assert m["counts"]["calls"] == sum(s["calls"] for s in by_step.values())
    assert r.stdout.count(" calls: ") == 1 and f"{m['counts']['calls']} calls: " in r.stdout
    assert m["counts"]["failed"] == 0
    # The smoke run's answers are what `plan` now expects of the judge's other calls (the server reports 1 completion token).
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-FAKEKEY-0123456789abcdef"}
    p = subprocess.run([str(EXE), "plan", str(SPEC), *SMALL, "--set", f"models.judge.model={MODEL}", "--set", f"models.judge.api_base={url}", "--json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    judge = next(s for s in json.loads(p.stdout)["steps"] if s["step"] == "judge")
    assert judge["answer_lengths"] == "cached answers (n=3)" and judge["to_run"] == JUDGE_CALLS - 3
    assert judge["est_completion_tokens"] == JUDGE_CALLS - 3


def test_limit_and_max_cost_reject_bad_values(tmp_path, openai_server):
    _, url = openai_server
    for extra, words in ((["--limit", "0"], "--limit 0"), (["--max-cost", "-1"], "--max-cost -1.0")):
        r = _run(tmp_path, url, *extra)
        assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
