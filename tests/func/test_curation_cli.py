"""Population and prompt curation by a language model, end to end through the
command line: `plan` stops before asking, `run` stores what the steps did,
a rerun is all cache hits, and `persona-exp population` runs (or, with --dry,
refuses to run) the model calls."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import yaml

from persona_exp.cli import main as cli
from persona_exp.execute import CallCache

CURATION = {
    "population": {"size": 60, "llm": {"check": True, "oversample": 0.2, "fields": ["defining_quirks", "lifestyle"]}},
    "prompts": {"filters": [{"question_mark": True}, {"min_words": 5}, {"controversial": True}]},
}


def write_spec(tmp_path: Path, *, generator: dict | None = None, **blocks) -> Path:
    spec = {
        "name": "curated",
        "seed": 0,
        "models": {"generator": generator or {"model": "sim/generator", "sim": {"inconsistent_rate": 0.2}}, "judge": {"model": "sim/judge"}},
        **CURATION,
        "experiment": {"kind": "loo", "attributes": ["age", "sex"], "n_personas": 4, "n_questions": 3, "n_resamples": 100},
        "output": {"dir": str(tmp_path / "out")},
        **blocks,
    }
    path = tmp_path / "curated.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def cache_size(tmp_path: Path) -> int:
    path = tmp_path / "out" / "cache.sqlite"
    if not path.exists():
        return 0
    with CallCache(path) as cache:
        return cache.stats()["calls"]


def test_plan_on_an_empty_cache_stops_with_a_pending_note(tmp_path, capsys, openai_server):
    state, url = openai_server
    spec = write_spec(tmp_path, generator={"model": "openai/test-model", "api_base": url})
    assert cli(["plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "population_check" in out and "72 calls, 72 to run" in out  # 60 personas + 20% drawn
    assert "the plan goes further: step population_check: 72 of 72 calls are not cached yet" in out
    assert state.requests == [] and cache_size(tmp_path) == 0
    assert cli(["plan", str(spec), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pending"].startswith("step population_check") and [s["step"] for s in summary["steps"]] == ["population_check"]


def test_run_stores_the_curation_and_a_rerun_is_all_cache_hits(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert cli(["run", str(spec), "--no-progress", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    steps = first["counts"]["by_step"]
    assert steps["population_check"]["calls"] == 72 and steps["population_check"]["ran"] == 72
    assert steps["prompt_controversial"]["calls"] > 0 and steps["population_fields"]["calls"] > 0
    run_dir = Path(first["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    llm = manifest["population"]["report"]["llm"]
    personas = pl.read_parquet(run_dir / "personas.parquet")
    assert personas.height == manifest["population"]["size"] == llm["check"]["kept"] == min(60, 72 - llm["check"]["rejected"])
    assert not set(llm["check"]["rejected_ids"]) & set(personas["persona_id"])
    assert llm["fields"]["fields"]["lifestyle"]["written"] == personas.height
    line = manifest["prompts"]["filters"][-1]
    assert line["name"] == "controversial" and line["removed"] == line["not_controversial"] > 0
    assert manifest["prompts"]["count"] == line["after"]
    calls = pl.read_parquet(run_dir / "calls.parquet")
    assert calls.filter(pl.col("step") == "population_check").height == 72

    # The HTML report's overview says what the population steps did.
    html = tmp_path / "report.html"
    assert cli(["report", "latest", "--dir", str(tmp_path / "out"), "-o", str(html)]) == 0
    text = html.read_text()
    assert f"language-model consistency check by sim/generator: {llm['check']['rejected']} of 72 rejected, 0 unanswered" in text
    assert "open fields by sim/generator: defining_quirks, lifestyle (0 failed)" in text
    capsys.readouterr()

    # Plan now sees every call cached and goes to the end.
    assert cli(["plan", str(spec), "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["pending"] is None and planned["to_run"] == 0 and planned["total_calls"] == first["counts"]["calls"]

    stored = cache_size(tmp_path)
    assert cli(["run", str(spec), "--no-progress"]) == 0
    out = capsys.readouterr().out
    n = first["counts"]["calls"]
    assert f"{n} calls: {n} cached, 0 run, 0 failed" in out
    assert cache_size(tmp_path) == stored


def test_population_command_runs_the_model_steps_through_the_cache(tmp_path, capsys, openai_server):
    state, url = openai_server
    state.reply = lambda body: ("no" if "Sex: Male" in body["messages"][0]["content"] else "yes") \
        if "Answer with one word" in body["messages"][0]["content"] else "Prefers long walks after dinner."
    spec = write_spec(tmp_path, generator={"model": "openai/test-model", "api_base": url, "max_retries": 0},
                      population={"size": 20, "llm": {"check": True, "oversample": 1.5, "fields": ["lifestyle"]}})
    args = ["population", str(spec), "--no-progress"]
    assert cli(args + ["--dry"]) == 2
    err = capsys.readouterr().err
    assert "--dry" in err and "not in the call cache" in err and "population_check" in err
    assert state.requests == []
    # The procedural population needs no model: the dry build stored it already.
    assert len(list((tmp_path / "out" / "populations").glob("*.parquet"))) == 1

    assert cli(args + ["--json"]) == 0
    captured = capsys.readouterr()
    first = json.loads(captured.out)
    assert "population model calls: 70 calls: 0 cached, 70 run, 0 failed" in captured.err  # 50 checks + 20 fields
    check = first["report"]["llm"]["check"]
    assert first["size"] == 20 and first["llm_rejected"] == check["rejected"] > 0
    assert first["calls"] == {"calls": 70, "cached": 0, "ran": 70, "failed": 0, "failures": {}, "lenient": 0}
    assert first["path"].endswith(".parquet") and Path(first["path"]).exists() and first["built"] is False
    assert pl.read_parquet(first["path"]).height == 50  # the procedural population: 20 and 150% more
    sent = len(state.requests)

    assert cli(args + ["--head", "1"]) == 0
    out = capsys.readouterr().out
    assert "population model calls: 70 calls: 70 cached, 0 run, 0 failed" in out and len(state.requests) == sent
    assert "procedural population of 50 loaded from" in out
    assert f"{check['rejected']} rejected" in out and "kept 20 personas" in out
    assert "open fields written by openai/test-model (role generator): lifestyle 20 written" in out
    assert "before check" in out  # representativeness of the kept personas beside the drawn ones
    assert "Sex: Female" in out and "Lifestyle: Prefers long walks after dinner." in out
    assert cli(args + ["--dry", "--json"]) == 0  # everything cached: a dry build completes
    assert json.loads(capsys.readouterr().out)["key"] == first["key"]


def test_population_command_exits_1_when_model_calls_fail(tmp_path, capsys, openai_server):
    state, url = openai_server
    state.fail_status = 500
    spec = write_spec(tmp_path, generator={"model": "openai/test-model", "api_base": url, "max_retries": 0},
                      population={"size": 6, "llm": {"fields": ["mannerisms"]}})
    assert cli(["population", str(spec), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "population model calls: 6 calls: 0 cached, 6 run, 6 failed (transport 6)" in captured.out
    assert "mannerisms 0 written, 6 failed (procedural value kept)" in captured.out
    assert "failed: population_fields" in captured.err and "500" in captured.err and "rerun the same command" in captured.err
    assert cache_size(tmp_path) == 0


def test_population_command_for_generated_famous_people(tmp_path, capsys):
    spec = write_spec(tmp_path, population={"source": "famous", "size": 6, "llm": {"generate_axes": ["politics", "diet"]}},
                      prompts={}, experiment={"kind": "wikipersona"})
    assert cli(["population", str(spec), "--no-progress", "--head", "1"]) == 0
    out = capsys.readouterr().out
    assert "population of curated: 6 personas (generated, not stored)" in out
    assert "people generated by sim/generator (role generator): politics: 6 people in 3 categories; diet: 6 people in 3 categories" in out
    assert "famous-person strata" in out and "--- politics:example-person-politics-" in out
    assert "population model calls: 2 calls: 0 cached, 2 run, 0 failed" in out
