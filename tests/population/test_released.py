"""The released PERSONA personas, read from small files in the published forms."""

from __future__ import annotations

import json

import polars as pl
import pytest

from persona_exp.errors import DataError
from persona_exp.population.released import OTHER, load_released_personas, persona_text

BLOCK = ("Age: 73\nSex: Female\nBig five scores: Openness: Extremely High, Conscientiousness: Low\n"
         "Political views: Democrat\nCognitive difficulty: nan\nFavourite food: pancit\nReligion: Other Christian")


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_text_blocks_become_the_33_attributes_and_unknown_lines_are_kept(tmp_path):
    other = BLOCK.replace("Age: 73", "Age: 41").replace("Female", "Male")
    rows = [{"persona": BLOCK, "instruction": f"q{i}?"} for i in range(3)] + [{"persona": other, "instruction": "q?"}]
    pop = load_released_personas(_jsonl(tmp_path / "pairs.jsonl", rows))
    f = pop.frame
    assert f.height == 2 and f["persona_id"].to_list() == ["p0001", "p0002"]  # a persona repeated on several rows is one persona
    first = f.row(0, named=True)
    assert first["age"] == 73 and f.schema["age"] == pl.Int64
    assert first["sex"] == "Female" and first["political_views"] == "Democrat" and first["religion"] == "Other Christian"
    assert first["big_five_scores"] == "Openness: Extremely High, Conscientiousness: Low"  # split at the first colon only
    assert first["cognitive_difficulty"] is None  # the paper's nan is unknown
    assert first[OTHER] == "Favourite food: pancit"
    text = persona_text(first)
    assert text.startswith("Age: 73\nSex: Female") and text.endswith("Favourite food: pancit")
    assert pop.report["attributes_found"]["sex"] == 2 and pop.report["attributes_found"]["income"] == 0


def test_attribute_columns_and_ids_in_csv_and_parquet(tmp_path):
    frame = pl.DataFrame({"persona_id": ["a", "b", "a"], "age": ["30", "52", "30"], "Household language": ["Spanish", "English only", "Spanish"],
                          "notes": ["x", "y", "x"]})
    frame.write_csv(tmp_path / "p.csv")
    frame.write_parquet(tmp_path / "p.parquet")
    for name in ("p.csv", "p.parquet"):
        f = load_released_personas(tmp_path / name).frame
        assert f["persona_id"].to_list() == ["a", "b"]
        assert f["household_language"].to_list() == ["Spanish", "English only"] and f["age"].to_list() == [30, 52]


@pytest.mark.parametrize("rows,words", [
    ([{"persona": "Age: young\nSex: Male"}], "age is 'young'"),
    ([{"persona": ""}], "is empty"),
    ([{"something": "else"}], "neither a persona text column"),
])
def test_bad_files_are_data_errors_naming_the_file(tmp_path, rows, words):
    path = _jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=words) as err:
        load_released_personas(path)
    assert str(path) in str(err.value)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_released_personas(tmp_path / "none.jsonl")
    (tmp_path / "p.txt").write_text("Age: 3", encoding="utf-8")
    with pytest.raises(DataError, match="unsupported extension"):
        load_released_personas(tmp_path / "p.txt")


def test_a_dpf_spec_runs_on_released_personas_and_prompts(tmp_path, monkeypatch):
    from persona_exp.pipeline import run

    rows = [{"persona": BLOCK.replace("Age: 73", f"Age: {20 + i}"), "instruction": f"Should question {q} be settled by a public vote?", "topic": f"t{q}"}
            for i in range(12) for q in range(6)]
    _jsonl(tmp_path / "pairs.jsonl", rows)
    (tmp_path / "spec.yaml").write_text(
        "name: rel\nseed: 0\nmodels:\n  generator: {model: sim/generator, temperature: 0}\n  judge: {model: sim/judge, temperature: 0}\n"
        "population: {source: persona, path: pairs.jsonl, size: 10}\nprompts: {source: pairs.jsonl, filters: [{dedupe: true}]}\n"
        "experiment: {kind: dpf, n_train: 2, n_seen_test: 1, n_heldout: 1, test_fraction: 0.34, persona_split: {test: 4}}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = run("spec.yaml", progress=False)
    prefs = out.analysis.tables["preferences"]
    assert prefs["persona_id"].n_unique() == 10 and prefs.height == 40
    assert prefs.unique("persona_id")["persona_split"].value_counts().sort("persona_split")["count"].to_list() == [4, 6]
    assert prefs["persona"].str.contains("Favourite food: pancit").all()
    assert out.manifest["prompts"]["count"] == 6


def test_source_persona_needs_a_path_and_takes_no_census_fields(tmp_path):
    from persona_exp.population import PopulationSpec

    with pytest.raises(ValueError, match="set population.path"):
        PopulationSpec(source="persona")
    with pytest.raises(ValueError, match="filters"):
        PopulationSpec(source="persona", path="p.jsonl", filters=["age >= 18"])
    with pytest.raises(ValueError, match="path"):
        PopulationSpec(source="census", path="p.jsonl")
