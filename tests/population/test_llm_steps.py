"""The language-model steps of population curation (population.llm): the
consistency check, oversampling, open fields, generated famous people, reruns
from the cache, and the errors for bad specs and bad model output."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
import yaml

from persona_exp.errors import DataError, SpecError
from persona_exp.execute.sim import complete
from persona_exp.pipeline import _population, load_spec, procedural_population_path, stage_context
from persona_exp.population import build_population, render_persona
from persona_exp.population.attributes import attribute
from persona_exp.population.llm import _age_phrase
from persona_exp.steps.calls import fill_template
from persona_exp.steps.templates import CONSISTENCY, OPEN_FIELD


def write_spec(tmp_path: Path, population: dict, *, models: dict | None = None, experiment: dict | None = None, **extra) -> Path:
    spec = {
        "name": "curation",
        "seed": 0,
        "models": models or {"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"}},
        "population": population,
        "experiment": experiment or {"kind": "loo", "attributes": ["age", "sex"], "n_personas": 4, "n_questions": 2, "n_resamples": 100},
        "output": {"dir": str(tmp_path / "out")},
        **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def build(path: Path, overrides=(), *, dry: bool = False):
    spec = load_spec(path, list(overrides), for_run=False)
    ctx, stager, _ = stage_context(spec, dry=dry, progress=False)
    return spec, _population(spec, Path(spec.output.dir), ctx), stager


def sim_says(model_sampling: dict, prompt: str) -> str:
    """What the simulator answers to one prompt, asked directly (not through the pipeline)."""
    text, _ = complete("sim/generator", [{"role": "user", "content": prompt}], model_sampling)
    return text


# --------------------------------------------------------------------------- consistency check


def test_check_drops_the_planted_share_and_the_report_matches_the_frame(tmp_path):
    rate, n = 0.3, 200
    path = write_spec(tmp_path, {"size": n, "llm": {"check": True}},
                      models={"generator": {"model": "sim/generator", "sim": {"inconsistent_rate": rate}}, "judge": {"model": "sim/judge"}})
    spec, pop, stager = build(path)
    check = pop.report["llm"]["check"]
    # Binomial tolerance: four standard deviations around n * rate.
    assert abs(check["rejected"] - n * rate) <= 4 * math.sqrt(n * rate * (1 - rate))
    assert check["checked"] == n and check["unanswered"] == 0 and check["model"] == "sim/generator"
    assert check["rate"] == pytest.approx(check["rejected"] / n)
    assert pop.frame.height == check["kept"] == n - check["rejected"] == pop.report["size"]
    assert check["short"] == check["rejected"] and check["surplus"] == 0

    # Exactly the personas the simulator calls inconsistent are gone, asked independently here.
    procedural = build_population(spec.population.procedural(), seed=0).frame
    sampling = spec.models["generator"].sampling()
    says_no = {row["persona_id"] for row in procedural.iter_rows(named=True)
               if sim_says(sampling, fill_template(CONSISTENCY, {"persona": render_persona(row)})) == "no"}
    assert set(check["rejected_ids"]) == says_no
    kept = pop.frame["persona_id"].to_list()
    assert not says_no & set(kept)
    assert kept == [p for p in procedural["persona_id"].to_list() if p not in says_no]  # draw order kept
    # The kept rows are the procedural rows, untouched.
    assert pop.frame.equals(procedural.filter(pl.col("persona_id").is_in(kept)))
    assert len(stager.results) == n and all(r.step == "population_check" for r in stager.results.values())
    # Representativeness is of the kept personas; the TVDs before the check stay in the report.
    tvd = {e["attribute"]: e["tvd"] for e in pop.report["representativeness"]}
    assert set(check["tvd_before"]) == set(tvd) and tvd != check["tvd_before"]
    sex = next(e for e in pop.report["representativeness"] if e["attribute"] == "sex")
    female = pop.frame.filter(pl.col("sex") == "Female").height / pop.frame.height
    assert next(d["sample"] for d in sex["distribution"] if d["value"] == "Female") == pytest.approx(female, abs=1e-6)
    income = next(e for e in pop.report["representativeness"] if e["attribute"] == "income")
    assert "(unknown)" not in {d["value"] for d in income["distribution"]}  # income text read back into bands
    assert any("consistency check" in note for note in pop.report["notes"])


def test_oversample_reaches_the_size_with_the_first_accepted(tmp_path):
    path = write_spec(tmp_path, {"size": 100, "llm": {"check": True, "oversample": 0.5}},
                      models={"generator": {"model": "sim/generator", "sim": {"inconsistent_rate": 0.2}}, "judge": {"model": "sim/judge"}})
    spec, pop, stager = build(path)
    check = pop.report["llm"]["check"]
    assert check["checked"] == 150 == pop.report["llm"]["procedural_size"] and len(stager.results) == 150
    assert pop.frame.height == 100 == check["kept"] and check["short"] == 0
    assert check["accepted"] == 150 - check["rejected"] and check["surplus"] == check["accepted"] - 100
    procedural = build_population(spec.population.procedural(), seed=0).frame
    assert procedural.height == 150
    accepted = [p for p in procedural["persona_id"].to_list() if p not in set(check["rejected_ids"])]
    assert pop.frame["persona_id"].to_list() == accepted[:100]
    # The procedural population is stored under its own key, at the size drawn.
    stored = procedural_population_path(spec, Path(spec.output.dir))
    assert stored.exists() and pl.read_parquet(stored).height == 150


def test_without_oversample_the_population_is_short_and_says_so(tmp_path):
    path = write_spec(tmp_path, {"size": 80, "llm": {"check": True}},
                      models={"generator": {"model": "sim/generator", "sim": {"inconsistent_rate": 0.25}}, "judge": {"model": "sim/judge"}})
    _, pop, _ = build(path)
    check = pop.report["llm"]["check"]
    assert check["rejected"] > 0 and pop.frame.height == 80 - check["rejected"]
    assert any("raise population.llm.oversample" in n for n in pop.report["notes"])


def test_a_check_that_rejects_everyone_is_an_error(tmp_path):
    path = write_spec(tmp_path, {"size": 10, "llm": {"check": True}},
                      models={"generator": {"model": "sim/generator", "sim": {"inconsistent_rate": 1.0}}, "judge": {"model": "sim/judge"}})
    with pytest.raises(DataError, match="called all 10 profiles inconsistent"):
        build(path)


def test_unanswered_checks_keep_the_persona_and_are_counted(tmp_path, openai_server):
    state, url = openai_server
    # Yes for women, an unreadable answer for everyone else (re-asked, then a parse failure).
    state.reply = lambda body: "yes" if "Sex: Female" in body["messages"][0]["content"] else "It is hard to say."
    path = write_spec(tmp_path, {"size": 30, "llm": {"check": True}},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    _, pop, stager = build(path)
    check = pop.report["llm"]["check"]
    men = pop.frame.filter(pl.col("sex") != "Female").height
    assert men > 0 and pop.frame.height == 30  # nobody dropped
    assert check["unanswered"] == men and check["rejected"] == 0 and check["rate"] == 0.0
    assert sum(r.status == "parse_failed" for r in stager.results.values()) == men
    assert any("parse_failed" in e for e in check["errors"])


# --------------------------------------------------------------------------- open fields


def test_open_fields_replace_the_procedural_values(tmp_path):
    fields = ["defining_quirks", "political_views"]
    path = write_spec(tmp_path, {"size": 40, "llm": {"fields": fields}})
    spec, pop, stager = build(path)
    procedural = build_population(spec.population.procedural(), seed=0).frame
    assert pop.frame["persona_id"].to_list() == procedural["persona_id"].to_list()
    rep = pop.report["llm"]["fields"]
    sampling = spec.models["generator"].sampling()
    shown = [c for c in procedural.columns if c not in ("persona_id", "weight", *fields)]
    adults = 0
    for new, old in zip(pop.frame.iter_rows(named=True), procedural.iter_rows(named=True)):
        persona = render_persona(old, shown)
        for f in fields:
            if attribute(f).applies(old):
                expected = " ".join(sim_says(sampling, fill_template(OPEN_FIELD, {"persona": persona, "field": f.replace("_", " "), "age": _age_phrase(old["age"])})).split())
                assert new[f] == expected != old[f]
                adults += f == "political_views"
            else:  # e.g. political views of a child: no call, the procedural value stays
                assert new[f] == old[f]
        for c in procedural.columns:
            if c not in fields:
                assert new[c] == old[c]
    assert rep["fields"]["defining_quirks"] == {"written": 40, "failed": 0, "not_applicable": 0}
    assert rep["fields"]["political_views"]["written"] == adults
    assert rep["fields"]["political_views"]["not_applicable"] == 40 - adults > 0  # the default population has children
    assert rep["calls"] == len(stager.results) == 40 + adults
    assert pop.key != build_population(spec.population.procedural(), seed=0).key


def test_failed_field_calls_keep_the_procedural_value(tmp_path, openai_server):
    state, url = openai_server
    # Text for women; an empty answer (asked again, then a failed call: empty) for everyone else.
    state.reply = lambda body: "Collects postcards from every town." if "Sex: Female" in body["messages"][0]["content"] else "   "
    path = write_spec(tmp_path, {"size": 24, "llm": {"fields": ["lifestyle"]}},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    spec, pop, _ = build(path)
    procedural = build_population(spec.population.procedural(), seed=0).frame
    women = pop.frame["sex"] == "Female"
    assert (pop.frame.filter(women)["lifestyle"] == "Collects postcards from every town.").all()
    assert pop.frame.filter(~women)["lifestyle"].to_list() == procedural.filter(~women)["lifestyle"].to_list()
    rep = pop.report["llm"]["fields"]
    assert rep["fields"]["lifestyle"] == {"written": int(women.sum()), "failed": int((~women).sum()), "not_applicable": 0}
    assert rep["failed"] == int((~women).sum()) > 0 and any("empty answer" in e for e in rep["errors"])
    assert any("kept their procedural value" in n for n in pop.report["notes"])


def test_server_errors_keep_every_procedural_value(tmp_path, openai_server):
    state, url = openai_server
    state.fail_status = 500
    path = write_spec(tmp_path, {"size": 5, "llm": {"fields": ["mannerisms"]}},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    spec, pop, _ = build(path)
    assert pop.frame.equals(build_population(spec.population.procedural(), seed=0).frame)
    assert pop.report["llm"]["fields"]["failed"] == 5 and any("500" in e for e in pop.report["llm"]["fields"]["errors"])


# --------------------------------------------------------------------------- famous people


def test_generated_famous_people_build_a_population(tmp_path):
    axes = ["politics", "diet", "religion"]
    path = write_spec(tmp_path, {"source": "famous", "size": 9, "llm": {"generate_axes": axes}}, experiment={"kind": "wikipersona"})
    _, pop, stager = build(path)
    assert len(stager.results) == 3 and {r.step for r in stager.results.values()} == {"famous_people"}
    f = pop.frame
    assert f.columns == ["persona_id", "name", "axis", "category", "description"] and f.height == 9
    assert set(f["axis"]) == set(axes) and f.group_by("axis").len()["len"].to_list() == [3, 3, 3]
    assert f["persona_id"].n_unique() == 9
    for row in f.iter_rows(named=True):  # the simulator's stand-ins, parsed field by field
        assert row["name"].startswith(f"Example Person {row['axis'].title()} ")
        assert row["category"].startswith(f"{row['axis'].title()} group ")
        assert row["description"] == "a fictional stand-in the offline simulator made up."
    people = pop.report["llm"]["people"]
    assert people["axes"]["diet"] == {"people": 6, "categories": 3, "unparsed_lines": 0, "duplicates": 0, "unparsed": []}
    assert pop.report["available"] == 18 and "people generated by sim/generator" in pop.report["source"]


def test_unparsed_lines_and_duplicates_are_counted(tmp_path, openai_server):
    state, url = openai_server
    state.reply = ("Here are some categories and people:\n"
                   "- Vegan, Ana Ruiz, a chef who writes about plant-based cooking, with a popular show.\n"
                   "- Vegan, Ana Ruiz, the same chef again.\n"
                   "- Omnivore, Tom Lee\n"
                   "* Omnivore, Sam Park, a food critic.\n")
    path = write_spec(tmp_path, {"source": "famous", "llm": {"generate_axes": ["diet"]}}, experiment={"kind": "wikipersona"},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    _, pop, _ = build(path)
    assert sorted(pop.frame["name"]) == ["Ana Ruiz", "Sam Park"]
    ana = pop.frame.filter(pl.col("name") == "Ana Ruiz").row(0, named=True)
    assert ana["category"] == "Vegan" and ana["description"] == "a chef who writes about plant-based cooking, with a popular show."
    diet = pop.report["llm"]["people"]["axes"]["diet"]
    assert diet["unparsed_lines"] == 2 and diet["duplicates"] == 1
    assert diet["unparsed"] == ["Here are some categories and people:", "- Omnivore, Tom Lee"]
    assert any("2 line(s)" in n and "1 person(s)" in n for n in pop.report["notes"])


def test_an_axis_without_people_lines_is_an_error_naming_it(tmp_path, openai_server):
    state, url = openai_server
    state.reply = lambda body: ("- Vegan, Ana Ruiz, a chef." if "Take diet as" in body["messages"][0]["content"]
                                else "I would rather not list real people.")
    path = write_spec(tmp_path, {"source": "famous", "llm": {"generate_axes": ["diet", "politics"]}}, experiment={"kind": "wikipersona"},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    with pytest.raises(DataError) as err:
        build(path)
    msg = str(err.value)
    assert "'politics'" in msg and "'diet'" not in msg and "population.llm.generate_axes" in msg and "parse_failed" in msg


# --------------------------------------------------------------------------- reruns and dry builds


def test_a_rebuild_is_all_cache_hits_and_identical(tmp_path, openai_server):
    state, url = openai_server
    state.reply = lambda body: "yes" if "Answer with one word" in body["messages"][-1]["content"] else "Keeps a garden on the balcony."
    path = write_spec(tmp_path, {"size": 12, "llm": {"check": True, "fields": ["personal_time"]}},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    _, first, s1 = build(path)
    sent = len(state.requests)
    assert sent == len(s1.results) == 24 and not any(r.cached for r in s1.results.values())
    _, second, s2 = build(path)
    assert len(state.requests) == sent  # nothing new reached the server
    assert len(s2.results) == 24 and all(r.cached for r in s2.results.values())
    assert second.key == first.key and second.frame.equals(first.frame)
    assert (second.frame["personal_time"] == "Keeps a garden on the balcony.").all()
    # A dry build answers from the cache too.
    _, third, _ = build(path, dry=True)
    assert third.key == first.key and len(state.requests) == sent


def test_a_dry_build_never_calls_the_model(tmp_path, openai_server):
    from persona_exp.steps.context import StagePending

    state, url = openai_server
    path = write_spec(tmp_path, {"size": 12, "llm": {"check": True}},
                      models={"generator": {"model": "openai/test-model", "api_base": url}, "judge": {"model": "sim/judge"}})
    with pytest.raises(StagePending) as err:
        build(path, dry=True)
    assert err.value.step == "population_check" and err.value.missing == 12
    assert state.requests == []


def test_building_llm_steps_without_a_stager_is_a_clear_error(tmp_path):
    from persona_exp.errors import PersonaExpError

    path = write_spec(tmp_path, {"size": 5, "llm": {"check": True}})
    spec = load_spec(path, for_run=False)
    with pytest.raises(PersonaExpError, match="population.llm asks a model"):
        _population(spec, Path(spec.output.dir))


# --------------------------------------------------------------------------- bad specs


@pytest.mark.parametrize(
    "population, fragments",
    [
        ({"llm": {"fields": ["quirks"]}}, ["population.llm.fields", "'quirks'", "defining_quirks", "mannerisms"]),
        ({"llm": {"fields": ["age"]}}, ["population.llm.fields", "'age' is not a procedural attribute"]),
        ({"llm": {"fields": ["lifestyle", "lifestyle"]}}, ["population.llm.fields", "more than once"]),
        ({"llm": {"oversample": 0.1}}, ["population.llm", "set check: true"]),
        ({"llm": {"check": True, "oversample": -1}}, ["population.llm.oversample"]),
        ({"llm": {"check": True, "check_template": "Is this consistent? yes or no"}}, ["population.llm.check_template", "{persona}"]),
        ({"llm": {"fields": ["lifestyle"], "field_template": "Write about {persona}."}}, ["population.llm.field_template", "{field}"]),
        ({"llm": {"check": True, "extra": 1}}, ["population.llm.extra", "unknown key"]),
        ({"llm": {"generate_axes": ["politics"]}}, ["llm.generate_axes does not apply to a census population"]),
        ({"source": "famous", "llm": {"check": True}}, ["llm.check does not apply to a famous population"]),
        ({"source": "famous", "llm": {"fields": ["lifestyle"], "oversample": 0.0}}, ["llm.fields does not apply to a famous population"]),
        ({"source": "famous", "llm": {"generate_axes": []}}, ["population.llm.generate_axes", "at least one axis"]),
        ({"source": "famous", "llm": {"generate_axes": ["Politics", "politics"]}}, ["the same axis"]),
        ({"source": "famous", "axes": ["politics"], "llm": {"generate_axes": ["politics"]}}, ["axes and llm.generate_axes exclude each other"]),
        ({"source": "famous", "llm": {"generate_axes": ["diet"], "people_template": "People please."}}, ["people_template", "{axis}"]),
    ],
)
def test_bad_llm_blocks_name_the_field(tmp_path, population, fragments, spec_error):
    kind = {"kind": "wikipersona"} if population.get("source") == "famous" else None
    path = write_spec(tmp_path, population, experiment=kind)
    spec_error(path, fragments)


def test_the_llm_role_must_be_a_model_and_may_be_an_extra_one(tmp_path, spec_error):
    path = write_spec(tmp_path, {"size": 5, "llm": {"check": True, "role": "curator"}})
    spec_error(path, ["population.llm.role", "'curator'", "models.curator.model", f"{path}:"])
    # With the role defined it is not an "unknown model role" of the experiment, and its model answers.
    path = write_spec(tmp_path, {"size": 5, "llm": {"check": True, "role": "curator"}},
                      models={"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"},
                              "curator": {"model": "sim/judge", "sim": {"inconsistent_rate": 0.5}}})
    _, pop, stager = build(path)
    assert {r.role for r in stager.results.values()} == {"curator"} and pop.report["llm"]["check"]["model"] == "sim/judge"
    # An extra role used by nothing is still rejected.
    path = write_spec(tmp_path, {"size": 5}, models={"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"},
                                                      "curator": {"model": "sim/judge"}})
    with pytest.raises(SpecError, match="models.curator: unknown model role"):
        load_spec(path)


def test_build_population_refuses_generated_people_without_a_model():
    from persona_exp.errors import InvalidArgumentError
    from persona_exp.population import PopulationSpec

    with pytest.raises(InvalidArgumentError, match="generate_axes asks a model"):
        build_population(PopulationSpec(source="famous", llm={"generate_axes": ["politics"]}), seed=0)
