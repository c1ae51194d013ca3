"""The LLM "is this controversial?" prompt filter (PERSONA 3.2) and the yes/no
classifier step under it: what it keeps, what it reports, how unanswered
prompts are treated, and the spec errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from persona_exp import prompts
from persona_exp.pipeline import _prompts, load_spec, stage_context
from persona_exp.steps.classify import ControversialFilter, classify

def write_spec(tmp_path: Path, filters: list, *, models: dict | None = None, source: str = "default") -> Path:
    spec = {
        "name": "prompts",
        "models": models or {"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"}},
        "population": {"size": 5},
        "prompts": {"source": source, "filters": filters},
        "experiment": {"kind": "loo", "attributes": ["age"], "n_personas": 2, "n_questions": 2, "n_resamples": 100},
        "output": {"dir": str(tmp_path / "out")},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def filtered(path: Path, *, dry: bool = False):
    spec = load_spec(path)
    ctx, stager, _ = stage_context(spec, dry=dry, progress=False)
    frame, report = _prompts(spec, ctx)
    return frame, report, stager


def test_removes_exactly_the_prompts_the_model_calls_uncontroversial(tmp_path, judged):
    path = write_spec(tmp_path, [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}, {"controversial": True}])
    frame, report, stager = filtered(path)
    before, _ = prompts.filter_prompts(prompts.load_default(), [{"question_mark": True}, {"min_words": 5}, {"dedupe": True}])
    expected = [t for t in before["text"].to_list() if judged(t)]
    assert 0 < len(expected) < before.height  # the default set has both kinds
    assert frame["text"].to_list() == expected
    assert [r["name"] for r in report] == ["question_mark", "min_words", "dedupe", "controversial"]
    line = report[-1]
    assert (line["before"], line["removed"], line["after"]) == (before.height, before.height - len(expected), len(expected))
    assert line["controversial"] == len(expected) and line["not_controversial"] == line["removed"] and line["unanswered"] == 0
    assert line["role"] == "generator"
    assert len(stager.results) == before.height and {r.step for r in stager.results.values()} == {"prompt_controversial"}


def test_identical_prompts_share_a_call_and_a_verdict(tmp_path):
    rows = [{"text": "Should voting be compulsory in national elections?"}, {"text": "What time does the sun set in June?"},
            {"text": "Should voting be compulsory in national elections?"}, {"text": "Is it fair to tax inherited wealth heavily?"}]
    file = tmp_path / "questions.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = write_spec(tmp_path, [{"controversial": {"role": "judge"}}], source=str(file))
    frame, report, stager = filtered(path)
    assert frame["text"].to_list() == [rows[0]["text"], rows[2]["text"], rows[3]["text"]]
    assert report[0]["removed"] == 1 and report[0]["checked"] == 4 and report[0]["calls"] == 3
    assert len(stager.results) == 3 and {r.role for r in stager.results.values()} == {"judge"}


def test_unanswered_prompts_are_kept_and_counted(tmp_path, openai_server):
    state, url = openai_server
    state.reply = lambda body: "no" if "sun set" in body["messages"][0]["content"] else "That depends on whom you ask."
    rows = ["Should voting be compulsory in national elections?", "What time does the sun set in June?", "Is a hot dog a sandwich, really?"]
    file = tmp_path / "questions.jsonl"
    file.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows), encoding="utf-8")
    models = {"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}}
    path = write_spec(tmp_path, [{"controversial": True}], models=models, source=str(file))
    frame, report, stager = filtered(path)
    assert frame["text"].to_list() == [rows[0], rows[2]]  # no verdict: kept
    line = report[0]
    assert (line["removed"], line["unanswered"], line["controversial"], line["not_controversial"]) == (1, 2, 0, 1)
    assert any("parse_failed" in e for e in line["errors"])
    assert sum(r.status == "parse_failed" for r in stager.results.values()) == 2


def test_a_dry_plan_stops_before_asking(tmp_path, openai_server):
    from persona_exp.steps.context import StagePending

    state, url = openai_server
    models = {"generator": {"model": "openai/test-model", "api_base": url}, "judge": {"model": "sim/judge"}}
    path = write_spec(tmp_path, [{"min_words": 5}, {"controversial": True}], models=models)
    with pytest.raises(StagePending) as err:
        filtered(path, dry=True)
    assert err.value.step == "prompt_controversial" and state.requests == []


def test_the_filter_plugs_into_filter_prompts_directly(tmp_path, judged):
    path = write_spec(tmp_path, [])
    spec = load_spec(path)
    ctx, _, _ = stage_context(spec, progress=False)
    frame = prompts.load_default().head(30)
    f = ControversialFilter(ctx)
    assert isinstance(f, prompts.Filter) and f.name == "controversial"
    kept, report = prompts.filter_prompts(frame, [f])
    assert kept["text"].to_list() == [t for t in frame["text"].to_list() if judged(t)]
    assert report[0].removed == f.last["not_controversial"] == sum(not judged(t) for t in frame["text"].to_list())


def test_classify_gives_none_for_failed_calls(tmp_path, openai_server):
    state, url = openai_server
    state.fail_status = 503
    models = {"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}}
    spec = load_spec(write_spec(tmp_path, [], models=models))
    ctx, _, _ = stage_context(spec, progress=False)
    result = classify(ctx, "check", "generator", "Is {x} a colour? Answer with one word: yes or no.", {"a": {"x": "red"}, "b": {"x": "seven"}})
    assert result.verdicts == {"a": None, "b": None} and result.unanswered == 2
    assert all(e.startswith("failed:") and "503" in e for e in result.errors.values())
    # The simulated judge answers the same question.
    spec = load_spec(write_spec(tmp_path, []))
    ctx, _, _ = stage_context(spec, progress=False)
    sim = classify(ctx, "check", "judge", "Is it controversial?\n\nQuestion: {q}\n\nAnswer with one word: yes or no.",
                   {"a": {"q": "Should zoos exist?"}, "b": {"q": "How tall is a giraffe?"}})
    assert sim.verdicts == {"a": True, "b": False} and sim.counts() == {"checked": 2, "yes": 1, "no": 1, "unanswered": 0}


def test_switched_off_controversial_filter_asks_nothing(tmp_path):
    path = write_spec(tmp_path, [{"question_mark": True}, {"controversial": False}])
    frame, report, stager = filtered(path)
    assert [r["name"] for r in report] == ["question_mark"] and stager.results == {} and frame.height > 0


@pytest.mark.parametrize(
    "entry, models, fragments",
    [
        ({"controversial": {"role": "critic"}}, None, ["prompts.filters[1].controversial.role", "'critic'", "models.critic.model"]),
        ({"controversial": True}, {"judge": {"model": "sim/judge"}, "generator": {"model": "sim/generator"}, "x": {"model": "sim/judge"}},
         ["models.x: unknown model role"]),
        ({"controversial": {"role": "judge", "templat": "Q"}}, None, ["prompts.filters[1].controversial.templat", "unknown key"]),
        ({"controversial": {"template": "Is it controversial?"}}, None, ["prompts.filters[1].controversial.template", "{question}"]),
        ({"controversial": "yes"}, None, ["prompts.filters[1].controversial", "true, false or a mapping"]),
    ],
)
def test_bad_controversial_entries_name_the_field(tmp_path, entry, models, fragments, spec_error):
    path = write_spec(tmp_path, [{"question_mark": True}, entry], models=models)
    spec_error(path, fragments)


def test_an_extra_role_used_by_the_filter_is_allowed(tmp_path, judged):
    models = {"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"}, "classifier": {"model": "sim/judge"}}
    path = write_spec(tmp_path, [{"controversial": {"role": "classifier"}}], models=models)
    frame, report, stager = filtered(path)
    assert {r.role for r in stager.results.values()} == {"classifier"}
    assert frame["text"].to_list() == [t for t in prompts.load_default()["text"].to_list() if judged(t)]
    assert isinstance(frame, pl.DataFrame) and report[0]["role"] == "classifier"
