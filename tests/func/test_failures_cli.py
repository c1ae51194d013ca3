"""Runs whose model fails, and the checks before anything is sent: exit codes,
failures listed with their reasons, nothing failed cached, no secret anywhere,
the same counts in every output; once the server recovers, a rerun finishes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


SMALL = ["--set", "population.size=200", "--set", "experiment.attributes=[age, sex]", "--set", "experiment.n_personas=3",
         "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100"]


def _cli(tmp_path, *args, env=None):
    return subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env or dict(os.environ))


def test_counts_are_the_same_in_the_summary_line_manifest_show_and_report(tmp_path, openai_server):
    """Judge answers that never parse: the judge calls fail (parse) and the
    summary line, the manifest, `show` and the report give the same numbers."""
    state, url = openai_server
    state.reply = "I cannot choose."
    args = ["run", str(SPEC), "--no-progress", *SMALL, "--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}"]
    r = _cli(tmp_path, *args)
    assert r.returncode == 1, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if " calls: " in ln)
    from persona_exp.execute.runner import counts_line
    from persona_exp.report.build import render_report
    from persona_exp.store import resolve_run

    info = resolve_run(tmp_path / ".persona-exp", "latest")
    c = info.manifest["counts"]
    assert line == counts_line(c) and c["calls"] == c["cached"] + c["ran"] and c["failed"] == sum(c["failures"].values())
    assert c["failures"]["parse"] == c["by_step"]["judge"]["calls"] and c["failed"] == c["failures"]["parse"]
    assert "re-asks the" in r.stderr and "answers that failed to parse, with new attempts" in r.stderr
    assert "judge: " in r.stdout and "failed to parse" in r.stdout  # the note that says why the statistics are undefined
    assert "why some statistics are undefined" in r.stdout
    show = _cli(tmp_path, "show", "latest")
    assert line in show.stdout and "failed to parse" in show.stdout
    assert line in render_report(info, n_resamples=50)
    sent = len(state.requests)
    again = _cli(tmp_path, *args)  # the rerun re-asks (two new attempts per judge call), it does not replay the failure
    assert len(state.requests) == sent + 2 * c["failures"]["parse"] and again.returncode == 1


def _without(*names):
    return {k: v for k, v in os.environ.items() if k not in names}


def test_a_missing_key_exits_2_in_seconds_naming_the_variable(tmp_path):
    """For common providers the key is checked without importing litellm (which
    alone takes seconds); retrying the missing key as an outage took minutes."""
    env = _without("OPENAI_API_KEY")
    t0 = time.monotonic()
    r = _cli(tmp_path, "run", str(SPEC), "--no-progress", *SMALL, "--set", "models.judge.model=openai/gpt-4o-mini", env=env)
    took = time.monotonic() - t0
    assert r.returncode == 2 and "OPENAI_API_KEY" in r.stderr and "Traceback" not in r.stderr
    assert took < 5.0, took
    plan = _cli(tmp_path, "plan", str(SPEC), *SMALL, "--set", "models.judge.model=openai/gpt-4o-mini", env=env)
    assert plan.returncode == 0 and "note: a run would stop here" in plan.stdout and "OPENAI_API_KEY" in plan.stdout
    named = _cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "models.judge.model=openai/gpt-4o-mini", "--set", "models.judge.api_key_env=MY_JUDGE_KEY", env=env)
    assert named.returncode == 2 and "models.judge.api_key_env: the environment variable MY_JUDGE_KEY is not set" in named.stderr
    assert not (tmp_path / ".persona-exp" / "runs").exists()


def test_unknown_models_are_spec_errors_at_their_line(tmp_path, spec_error):
    text = SPEC.read_text()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip() == "model: sim/judge")
    for typo, fragment in (("sim/judgee", "unknown simulated model 'sim/judgee'"), ("gpt-4o-typo", "litellm knows no provider for 'gpt-4o-typo'")):
        path = tmp_path / f"{typo.replace('/', '_')}.yaml"
        path.write_text(text.replace("model: sim/judge\n", f"model: {typo}\n"))
        spec_error(path, [f"{path}:{line}:", "models.judge.model", fragment])


def test_sigterm_stops_a_run_like_ctrl_c_keeping_finished_calls(tmp_path, openai_server):
    import signal

    state, url = openai_server
    state.delay = 0.2  # slow enough that the run is still going when it is told to stop
    args = [
        "run", str(SPEC), "--no-progress",
        "--set", "population.size=200", "--set", "experiment.attributes=[age, sex]",
        "--set", "experiment.n_personas=3", "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=100",
        "--set", "models.generator.model=sim/generator",
        "--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}", "--set", "models.judge.concurrency=1",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-FAKEKEY-0123456789abcdef"}
    proc = subprocess.Popen([str(EXE), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while len(state.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(state.requests) >= 3, "the run never reached the server"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "answers this run finished are in the cache" in err and "Traceback" not in err
    with CallCache(tmp_path / ".persona-exp" / "cache.sqlite") as cache:
        judged = sum(n for model, n in cache.stats()["by_model"].items() if model != "sim/generator")
    assert judged >= 1
    sent = len(state.requests)
    state.delay = 0.0
    again = subprocess.run([str(EXE), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert len(state.requests) - sent == 24 - judged  # 2 attributes x 3 personas x 2 questions x 2 judgments; the finished ones are not sent again
