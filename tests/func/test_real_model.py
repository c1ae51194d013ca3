"""The provider path on a real (tiny) model: SmolLM2-135M-Instruct served by
llama.cpp on 127.0.0.1 (fixture ``smollm_server`` in this folder's conftest).

The model is too small to follow the papers' formats reliably, which is the
point: its messy answers (rambling judges, revisions without markers, answers
cut at ``max_tokens``) must still give runs whose accounting adds up, whose
cache is reused only when the endpoint is the same (or declared the same with
``cache_as``), and whose undefined statistics say why. Everything goes through
the command line, in a temporary working folder with its own output folder.
Scale is tiny (a few dozen calls per run, short answers, two requests at a time).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

EXE = Path(sys.executable).with_name("persona-exp")
OUT = "out"  # the specs' output.dir, relative to the working folder
LINE = re.compile(r"(\d[\d,]*) calls: (\d[\d,]*) cached, (\d[\d,]*) run, (\d[\d,]*) failed")
REPORT_LINE = re.compile(r"(\d[\d,]*) \((\d[\d,]*) cached, (\d[\d,]*) run, (\d[\d,]*) failed\)")
# The server does not check keys; litellm's OpenAI client wants one to be set.
ENV = {"OPENAI_API_KEY": "sk-local-server-does-not-check"}


# Short prompts keep the answers short (so the run takes seconds per call on two
# cores) and still ask for the papers' formats, which the model follows or not.
TEMPLATES = {
    "answer_template": "Answer in one or two sentences.\n\nQuestion: {question}",
    "critique_template": "Here is a person:\n{persona}\n\nQuestion: {question}\nAnswer: {completion}\n\n"
                         "In one sentence, say how the answer could suit this person better.",
    "revise_template": "Question: {question}\nAnswer: {completion}\nCritique: {critique}\n\n"
                       "Rewrite the answer in one or two sentences following the critique. Write it as: REVISED PREFERENCE: <the new answer>\nDONE",
}


def _model(url: str, max_tokens: int, **extra) -> dict:
    return {"model": "openai/smollm2-135m", "api_base": url, "temperature": 0, "max_tokens": max_tokens,
            "concurrency": 2, "max_retries": 2, "timeout": 120, **extra}


def write_spec(folder: Path, kind: str, url: str) -> Path:
    """A tiny spec of ``kind`` whose every role is the local model."""
    models = {"generator": _model(url, 80), "judge": _model(url, 8)}
    experiment: dict = {"kind": kind, "n_resamples": 100, **TEMPLATES}
    population: dict = {"size": 60, "filters": ["age >= 18"]}
    if kind == "loo":
        # The paper's "exactly one letter" gets "A:" from this model, which the strict parser
        # refuses; this wording gets a bare letter, so the judge's answers can be cached.
        experiment["judge_template"] = ("You are role-playing the following person:\n{persona}\n\nThis person asked: {question}\n\n"
                                        "Response A: {response_a}\n\nResponse B: {response_b}\n\n"
                                        "Which response would this person prefer? Reply with one letter only: A or B.")
        experiment.update(attributes=["sex"], n_personas=2, k=2, n_questions=2)
    elif kind == "dpf":
        population["size"] = 2
        experiment.update(n_train=1, n_seen_test=0, n_heldout=1, verify=False)
    elif kind == "agreement":
        # Two judges on the same server, under two model names. The paper's judge prompt gets
        # "A:" from this model (a parse failure); judge_b's 2 tokens cut most answers short.
        models = {"generator": _model(url, 80), "judge_a": _model(url, 8), "judge_b": _model(url, 2, model="openai/smollm2-135m-b")}
        experiment.update(judges=["judge_a", "judge_b"], n_personas=2, n_questions=2)
    spec = {"name": f"real-{kind}", "seed": 0, "models": models, "population": population,
            "prompts": {"source": "default"}, "experiment": experiment, "output": {"dir": OUT}}
    path = folder / f"real_{kind}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=900, env={**os.environ, **ENV})


def numbers(match: re.Match) -> dict[str, int]:
    return dict(zip(("calls", "cached", "ran", "failed"), (int(g.replace(",", "")) for g in match.groups())))


def summary_line(text: str) -> dict[str, int]:
    found = LINE.findall(text)
    assert len(found) == 1, f"expected one 'N calls: C cached, R run, F failed' line in:\n{text}"
    return numbers(LINE.search(text))


def run(cwd: Path, spec: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, dict[str, int]]:
    """``persona-exp run``; checks the exit code is honest about failures and returns the counts."""
    sets = [a for o in overrides for a in ("--set", o)]
    r = cli(cwd, "run", str(spec), *sets, "--no-progress")
    assert r.returncode in (0, 1), f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    counts = summary_line(r.stdout)
    assert counts["calls"] == counts["cached"] + counts["ran"], counts
    assert 0 <= counts["failed"] <= counts["calls"], counts
    if counts["failed"]:
        assert r.returncode == 1, r.stdout
        assert "failed: " in r.stderr, r.stderr  # each failure listed with its step, role and reason
    else:
        assert r.returncode == 0, r.stderr
    return r, counts


def show_json(cwd: Path) -> dict:
    r = cli(cwd, "show", "latest", "--dir", OUT, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_accounting(cwd: Path, counts: dict[str, int]) -> dict:
    """The run's counts are the same in the summary line, the manifest, the calls
    table and ``show``; failed calls are a subset, each with its reason.
    Returns the manifest."""
    manifest = show_json(cwd)["manifest"]
    m = manifest["counts"]
    assert {k: m[k] for k in counts} == counts, (m, counts)
    reasons = m.get("failures")
    assert isinstance(reasons, dict), f"the manifest's counts do not split failed by reason: {m}"
    assert sum(reasons.values()) == m["failed"], m
    assert all(n >= 0 for n in reasons.values()) and all(k for k in reasons), m
    by_step = m["by_step"]
    for key in ("calls", "cached", "ran", "failed"):
        assert sum(s[key] for s in by_step.values()) == m[key], (key, by_step)

    run_dir = next((cwd / OUT / "runs").glob(f"*/{manifest['run_id']}"))
    calls = pl.read_parquet(run_dir / "calls.parquet")
    assert calls.height == m["calls"]
    assert calls["cached"].sum() == m["cached"]
    bad = calls.filter(pl.col("status") != "ok")
    assert bad.height == m["failed"]
    assert bad.filter(pl.col("error").is_null() | (pl.col("error").str.strip_chars() == "")).height == 0, bad
    # An answer that failed to parse, or was cut short where a parser needed it, keeps what the model actually said.
    said = calls.filter(pl.col("reason").is_in(["parse", "truncated"]))
    assert said.filter(pl.col("text").is_null() | (pl.col("text").str.strip_chars() == "")).height == 0, said.select("step", "reason", "error", "text")

    text = cli(cwd, "show", "latest", "--dir", OUT)
    assert text.returncode == 0, text.stderr
    assert summary_line(text.stdout) == counts
    return manifest


def cache_file(cwd: Path) -> Path:
    return cwd / OUT / "cache.sqlite"


def no_empty_answers_cached(cwd: Path) -> None:
    with sqlite3.connect(cache_file(cwd)) as db:
        empty = db.execute("SELECT count(*) FROM calls WHERE trim(response, ' \t\r\n') = ''").fetchone()[0]
    assert empty == 0, f"{empty} empty answers are in the cache"


def by_step(cwd: Path) -> dict[str, dict[str, int]]:
    return show_json(cwd)["manifest"]["counts"]["by_step"]


# --------------------------------------------------------------------------- leave-one-out


@pytest.fixture(scope="module")
def loo_run(smollm_server, tmp_path_factory):
    """One LOO run on the real model, shared by the tests that look at it."""
    cwd = tmp_path_factory.mktemp("real_loo")
    spec = write_spec(cwd, "loo", smollm_server.url)
    plan = cli(cwd, "plan", str(spec), "--json")
    assert plan.returncode == 0, plan.stderr
    first, counts = run(cwd, spec)
    return cwd, spec, json.loads(plan.stdout), first, counts


def test_loo_run_completes_and_counts_add_up(loo_run):
    cwd, _, plan, first, counts = loo_run
    assert plan["total_calls"] == plan["to_run"] == counts["calls"] > 0
    assert counts["cached"] == 0 and counts["ran"] == counts["calls"]
    check_accounting(cwd, counts)
    no_empty_answers_cached(cwd)
    report = cli(cwd, "report", "latest", "--dir", OUT, "-o", "report.html")
    assert report.returncode == 0, report.stderr
    html = (cwd / "report.html").read_text()
    found = LINE.search(html) or REPORT_LINE.search(html)
    assert found, "the report shows no 'N calls: C cached, R run, F failed' counts"
    assert numbers(found) == counts


def undefined_with_reasons(cwd: Path, printed: str) -> int:
    """Checks that every attribute whose kappa is undefined carries a reason in
    the stored headline and in what ``run`` printed, and that missing judgments
    are traced to the steps that failed; returns how many are undefined."""
    manifest = show_json(cwd)["manifest"]
    run_dir = next((cwd / OUT / "runs").glob(f"*/{manifest['run_id']}"))
    headline = pl.read_parquet(run_dir / "loo_attributes.parquet")
    text_cols = [c for c, t in headline.schema.items() if t == pl.String and c != "attribute"]
    undefined = headline.filter(pl.col("kappa").is_nan() | pl.col("kappa").is_null())
    for row in undefined.iter_rows(named=True):
        reasons = [row[c] for c in text_cols if row[c] and row[c].strip()]
        assert reasons, f"kappa of {row['attribute']} is undefined and its headline row gives no reason: {row}"
        assert any(r in printed for r in reasons), f"the reason for {row['attribute']} is not in the printed headline"
    if undefined.height:
        for step, s in manifest["counts"]["by_step"].items():
            if s["failed"]:
                pattern = rf"\b{re.escape(step)}\b.*\b{s['failed']}\b"
                assert re.search(pattern, printed), f"{s['failed']} {step} calls failed and the printed headline does not say so:\n{printed}"
    return undefined.height


def test_loo_undefined_statistics_say_why(loo_run):
    cwd, spec, _, first, _ = loo_run
    undefined_with_reasons(cwd, first.stdout)
    # Answers cut at 4 tokens: every revision fails, no judge is asked, and no kappa is defined.
    r, counts = run(cwd, spec, "models.generator.max_tokens=4")
    assert counts["failed"] > 0
    assert undefined_with_reasons(cwd, r.stdout) == 1


def test_real_model_runs_are_not_labelled_simulated(loo_run):
    cwd, _, _, first, _ = loo_run
    manifest = show_json(cwd)["manifest"]
    assert manifest["simulated"] is False
    run_dir = next((cwd / OUT / "runs").glob(f"*/{manifest['run_id']}"))
    assert json.loads((run_dir / "metrics.json").read_text())["simulated"] is False
    assert "simulat" not in first.stdout.lower()


def test_loo_rerun_is_served_from_the_cache(loo_run):
    cwd, spec, _, first, counts = loo_run
    again, counts2 = run(cwd, spec)
    assert counts2["calls"] == counts["calls"]
    # What answered the first time comes from the cache; only failures may be asked again.
    assert counts2["cached"] >= counts["calls"] - counts["failed"]
    assert counts2["ran"] <= counts["failed"]
    manifest = check_accounting(cwd, counts2)
    calls = pl.read_parquet(next((cwd / OUT / "runs").glob(f"*/{manifest['run_id']}")) / "calls.parquet")
    sent = calls.filter(~pl.col("cached") & (pl.col("reason").is_null() | (pl.col("reason") != "skipped"))).height
    if counts["failed"] and not sent:
        promise = re.search(r"rerun\w* the same command (sends|re-asks|to retry)", first.stderr)
        assert not promise, f"the first run promised that a rerun asks again, and the rerun sent nothing: {promise.group(0)}"
    no_empty_answers_cached(cwd)


def test_api_base_is_part_of_a_calls_identity_and_cache_as_keeps_it(loo_run, smollm_server):
    """The same server under another URL is another endpoint: the judge's calls
    are asked again (the generator's, still at the first URL, stay cached). With
    ``cache_as`` the user declares two URLs the same model, and the second URL is
    served from the first one's answers."""
    cwd, spec, _, _, _ = loo_run
    moved = [f"models.judge.api_base={smollm_server.alt_url}"]
    plan = cli(cwd, "plan", str(spec), "--set", moved[0], "--json")
    assert plan.returncode == 0, plan.stderr
    steps = {s["step"]: s for s in json.loads(plan.stdout)["steps"]}
    assert steps["judge"]["to_run"] == steps["judge"]["calls"] > 0, steps
    assert steps["base_answer"]["to_run"] == 0, steps

    run(cwd, spec, *moved)
    steps = by_step(cwd)
    assert steps["judge"]["cached"] == 0 and steps["judge"]["ran"] == steps["judge"]["calls"], steps
    assert steps["base_answer"]["cached"] == steps["base_answer"]["calls"] > 0, steps

    named = ["models.judge.cache_as=smollm2-local"]
    run(cwd, spec, *named)
    first = by_step(cwd)["judge"]
    _, counts = run(cwd, spec, *named, *moved)
    again = by_step(cwd)["judge"]
    assert again["cached"] >= first["calls"] - first["failed"] > 0, (first, again)
    assert again["ran"] <= first["failed"], (first, again)
    check_accounting(cwd, counts)


# --------------------------------------------------------------------------- DPF and agreement


def test_dpf_on_the_real_model(smollm_server, tmp_path):
    spec = write_spec(tmp_path, "dpf", smollm_server.url)
    first, counts = run(tmp_path, spec)
    manifest = check_accounting(tmp_path, counts)
    no_empty_answers_cached(tmp_path)
    run_dir = next((tmp_path / OUT / "runs").glob(f"*/{manifest['run_id']}"))
    calls = pl.read_parquet(run_dir / "calls.parquet")
    revisions = calls.filter(pl.col("step") == "revise")
    assert revisions.height > 0
    # A revision accepted without the paper's markers is a lenient reading: counted and said, never silent.
    no_markers = revisions.filter((pl.col("status") == "ok") & ~pl.col("text").str.contains("REVISED PREFERENCE:", literal=True))
    counted = manifest["counts"]["by_step"]["revise"].get("lenient", 0)
    assert counted >= no_markers.height, f"{no_markers.height} revisions without markers were accepted, {counted} counted as lenient"
    if manifest["counts"].get("lenient") or no_markers.height:
        assert "lenient" in first.stdout, "answers were read leniently and the run did not say so"
    # Exported pairs: one per revision that answered, labelled as not simulated.
    out = tmp_path / "pairs.jsonl"
    exp = cli(tmp_path, "export", "latest", "--dir", OUT, "--format", "jsonl", "-o", str(out))
    assert exp.returncode == 0, exp.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert len(rows) == revisions.filter(pl.col("status") == "ok").height
    assert all(r["simulated"] is False for r in rows)
    assert all(r["chosen"].strip() and r["rejected"].strip() for r in rows)


def test_agreement_on_the_real_model(smollm_server, tmp_path):
    spec = write_spec(tmp_path, "agreement", smollm_server.url)
    plan = cli(tmp_path, "plan", str(spec), "--json")
    assert plan.returncode == 0, plan.stderr
    _, counts = run(tmp_path, spec)
    assert json.loads(plan.stdout)["total_calls"] == counts["calls"]
    check_accounting(tmp_path, counts)
    no_empty_answers_cached(tmp_path)
    steps = by_step(tmp_path)
    # Two judges with different model names are different calls, even on one server.
    assert steps["judge:judge_a"]["calls"] == steps["judge:judge_b"]["calls"] > 0, steps
