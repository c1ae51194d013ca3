"""Age-aware enrichment: children get no adult values, the very old no strenuous pastimes,
adults 18-79 draw exactly as before the age bands, and the open-field prompt states the age.

The cut-offs are restated here from the data README (the documented design), not read back
from the code, so moving one without documenting it fails a test.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats

from persona_exp.errors import DataError
from persona_exp.pipeline import _population, load_spec, stage_context
from persona_exp.population import enrich, enrichment_lists, loo_variants
from persona_exp.population.attributes import NOT_APPLICABLE, attribute
from persona_exp.population.render import LooShortfallWarning
from persona_exp.population.build import PopulationSpec, build_population
from persona_exp.population.enrich import (
    _NOT_APPLICABLE,
    _SLOT_LIST,
    BIG_FIVE_MIN_AGE,
    LIST_ATTRIBUTES,
    RELIGION_MIN_AGE,
    _uniform,
    _words,
)

README = Path(__file__).resolve().parents[2] / "persona_exp" / "population" / "data" / "README.md"
# (first age, last age, band) as documented in data/README.md
BANDS = [(0, 2, "infant_toddler"), (3, 4, "preschool"), (5, 12, "school_age"), (13, 17, "teen"), (18, 200, "adult")]
DOCUMENTED = {"big_five": 10, "religion": 13, "high_activity_max_age": 79}


def _band(age: int) -> str:
    return next(name for lo, hi, name in BANDS if lo <= age <= hi)


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    """3,000 census personas without filters: children and the very old included."""
    return build_population(PopulationSpec(source="census", size=3000), seed=1).frame


def test_the_code_uses_the_documented_cut_offs():
    lists = enrichment_lists()
    assert (BIG_FIVE_MIN_AGE, RELIGION_MIN_AGE, lists.high_activity_max_age) == tuple(DOCUMENTED.values())
    assert [lists.band(a) for a in range(101)] == [_band(a) for a in range(101)]
    assert _NOT_APPLICABLE == NOT_APPLICABLE
    text = README.read_text(encoding="utf-8")
    for lo, hi, name in BANDS[:-1]:
        assert f"{lo}-{hi}" in text, f"band {name} ({lo}-{hi}) is not documented in {README.name}"
    for cut in DOCUMENTED.values():
        assert re.search(rf"\b{cut}\b", text), f"cut-off {cut} is not documented in {README.name}"


def test_children_get_only_the_lists_of_their_age_band(population):
    lists = enrichment_lists()
    children = population.filter(pl.col("age") < 18)
    seen = {name for _, _, name in BANDS[:-1]}
    assert set(children["age"].to_list()) and {_band(a) for a in children["age"]} == seen  # every child band is present
    for name in LIST_ATTRIBUTES:
        adult = set(lists.entries[name]["adult"])
        for age, value in zip(children["age"], children[name]):
            assert value in lists.entries[name][_band(age)], (name, age, value)
            assert value not in adult, (name, age, value)
    # the reported case: no toddler asks "Does that make sense?"
    assert not children["mannerisms"].str.contains("Does that make sense").any()


def test_big_five_and_religion_are_not_applicable_under_their_cut_offs(population):
    young = population.filter(pl.col("age") < BIG_FIVE_MIN_AGE)
    older = population.filter(pl.col("age") >= BIG_FIVE_MIN_AGE)
    assert young.height > 0 and (young["big_five_scores"] == NOT_APPLICABLE).all()
    assert older["big_five_scores"].str.starts_with("Openness: ").all()
    assert not older["big_five_scores"].str.contains(NOT_APPLICABLE).any()
    below = population.filter(pl.col("age") < RELIGION_MIN_AGE)
    assert below.height > 0 and (below["religion"] == NOT_APPLICABLE).all()
    assert not (population.filter(pl.col("age") >= RELIGION_MIN_AGE)["religion"] == NOT_APPLICABLE).any()
    minors = population.filter(pl.col("age") < 18)
    for column in ("ideology", "political_views"):
        assert (minors[column] == "Too young to have political views").all()


def test_no_high_exertion_entries_from_80_on(population):
    lists = enrichment_lists()
    tagged = {name: lists.high[name] for name in LIST_ATTRIBUTES if lists.high[name]}
    assert "Swims laps at the local pool" in tagged["personal_time"]
    old = population.filter(pl.col("age") >= 80)
    younger = population.filter(pl.col("age").is_between(18, 79))
    assert old.height > 0
    for name, high in tagged.items():
        assert not old[name].is_in(list(high)).any(), name
        assert younger[name].is_in(list(high)).any(), name  # the filter is by age, not a removal
    # many 95-year-olds: the remaining entries are drawn uniformly, none of the tagged ones
    n = 20_000
    frame = pl.DataFrame({"persona_id": [f"o{i}" for i in range(n)], "age": [95] * n})
    enriched = enrich(frame, seed=6)
    for name in LIST_ATTRIBUTES:
        entries = lists.choices(name, 95)
        assert not set(entries) & lists.high[name]
        counts = np.array([(enriched[name] == e).sum() for e in entries])
        assert counts.sum() == n and stats.chisquare(counts).pvalue > 1e-3, name


def test_adults_18_to_79_draw_exactly_as_before_the_age_bands():
    """The rule before age bands, frozen here: the uniform of the attribute's slot indexes the whole adult list."""
    rng = np.random.default_rng(2)
    n = 5000
    frame = pl.DataFrame({"persona_id": [f"a{i}" for i in range(n)], "age": rng.integers(0, 101, n)})
    enriched = enrich(frame, seed=4)
    words = _words(frame["persona_id"].to_list(), 4)
    lists = enrichment_lists()
    adult = frame["age"].is_between(18, 79).to_numpy()
    for name in LIST_ATTRIBUTES:
        full = lists.entries[name]["adult"]
        idx = np.minimum((_uniform(words[:, _SLOT_LIST[name]]) * len(full)).astype(np.int64), len(full) - 1)
        before = np.asarray(full, dtype=object)[idx]
        assert (enriched[name].to_numpy()[adult] == before[adult]).all(), name
        if lists.high[name]:  # where an 80+ persona drew a tagged entry before, it now draws another
            old = frame["age"].to_numpy() >= 80
            changed = old & np.isin(before, list(lists.high[name]))
            assert changed.any() and not np.isin(enriched[name].to_numpy()[changed], list(lists.high[name])).any()


def test_a_child_s_not_applicable_attributes_are_neither_loo_targets_nor_context(population):
    young = population.filter(pl.col("age") < BIG_FIVE_MIN_AGE)
    rows = young.to_dicts()
    for row in rows:
        assert not attribute("big_five_scores").applies(row) and not attribute("religion").applies(row)
        assert attribute("defining_quirks").applies(row)  # an age-appropriate value, so it is used
    young_ids = set(young["persona_id"])
    for target in ("big_five_scores", "religion"):
        with pytest.warns(LooShortfallWarning):  # fewer personas than asked for: the children are left out
            pairs = loo_variants(population, target, n_personas=3000, k=3, seed=0)
        assert pairs.available == population.height - population.filter(pl.col(target) == NOT_APPLICABLE).height
        assert not {p.persona_id for p in pairs} & young_ids
    # context: a child's base never holds them, even when every applicable attribute is taken
    pairs = loo_variants(population, "defining_quirks", n_personas=3000, k=40, seed=0)
    bases = {p.persona_id: p.base for p in pairs}
    assert young_ids <= set(bases)
    for pid in young_ids:
        assert "big_five_scores" not in bases[pid] and "religion" not in bases[pid]


def write_spec(tmp_path: Path, population: dict, models: dict | None = None) -> Path:
    spec = {
        "name": "ages",
        "seed": 0,
        "models": models or {"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"}},
        "population": population,
        "experiment": {"kind": "loo", "attributes": ["age", "sex"], "n_personas": 4, "n_questions": 2, "n_resamples": 100},
        "output": {"dir": str(tmp_path / "out")},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def build(path: Path):
    spec = load_spec(path, [], for_run=False)
    ctx, stager, _ = stage_context(spec, dry=False, progress=False)
    return spec, _population(spec, Path(spec.output.dir), ctx), stager


def _age_words(age: int) -> str:
    return "under 1 year old" if age == 0 else ("1 year old" if age == 1 else f"{age} years old")


def test_the_open_field_prompt_states_each_persona_s_age(tmp_path, openai_server):
    state, url = openai_server
    prompts: list[str] = []

    def reply(body):
        prompts.append(body["messages"][0]["content"])
        return "Written by the model."

    state.reply = reply
    path = write_spec(tmp_path, {"size": 60, "llm": {"fields": ["mannerisms", "religion"]}},
                      models={"generator": {"model": "openai/test-model", "api_base": url, "max_retries": 0}, "judge": {"model": "sim/judge"}})
    _, pop, _ = build(path)
    ages = pop.frame["age"].to_list()
    assert min(ages) < RELIGION_MIN_AGE and max(ages) >= 18
    stated = [re.search(r"This person is (.+?)\. Write this person's (mannerisms|religion)", p) for p in prompts]
    assert all(stated) and len(prompts) == pop.report["llm"]["fields"]["calls"]
    expected = sorted([(_age_words(a), "mannerisms") for a in ages] + [(_age_words(a), "religion") for a in ages if a >= RELIGION_MIN_AGE])
    assert sorted((m.group(1), m.group(2)) for m in stated) == expected
    assert pop.report["llm"]["fields"]["fields"]["religion"]["not_applicable"] == sum(a < RELIGION_MIN_AGE for a in ages)


def test_a_custom_field_template_must_state_the_age(tmp_path, spec_error):
    path = write_spec(tmp_path, {"llm": {"fields": ["lifestyle"], "field_template": "Here is {persona}. Write their {field}."}})
    spec_error(path, ["population.llm.field_template", "{age}"])


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda raw: raw["bands"].pop(1), "must start at age 3"),  # a gap: 3-4 has no band
        (lambda raw: raw.update(high_activity_max_age="old"), "high_activity_max_age"),
        (lambda raw: raw["lifestyle"].pop("teen"), "'lifestyle' must hold one list for each band"),
        (lambda raw: raw["mannerisms"]["preschool"].__setitem__(1, raw["mannerisms"]["preschool"][0]), "mannerisms.preschool must hold at least 20 distinct"),
        (lambda raw: raw["personal_time"].update(adult=[{"text": e if isinstance(e, str) else e["text"], "activity": "high"}
                                                       for e in raw["personal_time"]["adult"]]), "personal_time.adult keeps fewer than 20"),
        (lambda raw: raw["personal_time"]["adult"].__setitem__(0, {"text": "Naps", "activity": "very high"}), "'activity': 'high'"),
    ],
)
def test_a_broken_lists_file_is_a_data_error_naming_the_list(monkeypatch, change, fragment):
    module = importlib.import_module("persona_exp.population.enrich")
    broken = json.loads((README.parent / "enrichment_lists.json").read_text(encoding="utf-8"))
    change(broken)
    monkeypatch.setattr(module, "_read_json", lambda name: broken)
    module.enrichment_lists.cache_clear()
    try:
        with pytest.raises(DataError, match=re.escape(fragment)):
            module.enrichment_lists()
    finally:
        module.enrichment_lists.cache_clear()
