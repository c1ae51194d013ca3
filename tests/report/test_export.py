"""`persona-exp export`: preference pairs and judgments as JSON lines, parquet,
or a `datasets` folder, with answer texts taken from the run's calls table."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from persona_exp.export import COLUMNS
from persona_exp.population import attribute

PAIR_COLUMNS = list(COLUMNS["loo"]["pairs"])
JUDGMENT_COLUMNS = list(COLUMNS["loo"]["judgments"])


@pytest.fixture(scope="module")
def exported(runs, cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    for args in (["--format", "jsonl", "-o", out / "pairs.jsonl"],
                 ["--format", "jsonl", "--table", "judgments", "-o", out / "judgments.jsonl"],
                 ["--format", "parquet", "-o", out / "pairs.parquet"],
                 ["--format", "hf", "-o", out / "hf"]):
        r = cli(runs.root, "export", runs.a, *args)
        assert r.returncode == 0, r.stderr
        assert "note:" not in r.stderr, r.stderr  # nothing left out: every persona text was rebuilt and verified
    return out


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_pairs_have_the_documented_columns(exported, runs):
    rows = _lines(exported / "pairs.jsonl")
    judgments = pl.read_parquet(runs.folder(runs.a) / "loo_judgments.parquet")
    assert len(rows) == judgments.filter(pl.col("with") >= 0).height > 0
    for row in rows:
        assert list(row) == PAIR_COLUMNS
        assert isinstance(row["chosen"], str) and isinstance(row["rejected"], str) and row["chosen"] != row["rejected"]
        assert isinstance(row["chosen_is_refined"], bool)
    assert {r["attribute"] for r in rows} == {"age", "sex", "religion"}


def test_pairs_match_the_calls_table(exported, runs):
    """chosen / rejected are the texts of the design's base and revise calls,
    in the order the with-attribute judge preferred; prompt is the question."""
    folder = runs.folder(runs.a)
    calls = pl.read_parquet(folder / "calls.parquet")
    text = {k: (v if v is not None else t) for k, v, t in zip(calls["key"], calls["value"], calls["text"])}
    questions = dict(pl.read_parquet(folder / "prompts.parquet").select("id", "text").iter_rows())
    design = {(r["attribute"], r["persona_id"], r["question_id"]): r for r in pl.read_parquet(folder / "loo_judgments.parquet").iter_rows(named=True)}
    personas = {r["persona_id"]: r for r in pl.read_parquet(folder / "personas.parquet").iter_rows(named=True)}
    rows = _lines(exported / "pairs.jsonl")
    for row in rows:
        item = design[(row["attribute"], row["persona_id"], row["question_id"])]
        refined, base = text[item["revise_key"]], text[item["base_key"]]
        if item["with"] == 1:
            assert (row["chosen"], row["rejected"], row["chosen_is_refined"]) == (refined, base, True)
        else:
            assert (row["chosen"], row["rejected"], row["chosen_is_refined"]) == (base, refined, False)
        assert row["prompt"] == questions[row["question_id"]]
        assert row["without_agrees"] == (item["without"] == item["with"])
        assert row["attribute_value"] == str(personas[row["persona_id"]][row["attribute"]])
        # The persona the judge saw: the attribute's line is in it and only in it.
        line = f"{attribute(row['attribute']).label}: "
        assert line in row["persona"] and line not in row["persona_without"]
        assert set(row["persona_without"].splitlines()) < set(row["persona"].splitlines())


def test_jsonl_judgments(exported, runs):
    rows = _lines(exported / "judgments.jsonl")
    judgments = pl.read_parquet(runs.folder(runs.a) / "loo_judgments.parquet")
    assert len(rows) == judgments.height
    assert all(list(r) == JUDGMENT_COLUMNS for r in rows)
    expected = {(r["attribute"], r["persona_id"], r["question_id"]): r for r in judgments.iter_rows(named=True)}
    for r in rows:
        e = expected[(r["attribute"], r["persona_id"], r["question_id"])]
        assert r["prefers_refined_with"] == (None if e["with"] < 0 else e["with"] == 1)
        assert r["prefers_refined_without"] == (None if e["without"] < 0 else e["without"] == 1)
        assert r["judge_with_key"] == e["judge_with_key"]


def test_parquet_loads_with_polars_and_equals_the_jsonl(exported):
    frame = pl.read_parquet(exported / "pairs.parquet")
    assert frame.columns == PAIR_COLUMNS
    assert frame.schema["chosen"] == pl.String and frame.schema["chosen_is_refined"] == pl.Boolean
    assert frame.to_dicts() == _lines(exported / "pairs.jsonl")


def test_hf_folder_has_parquet_and_card(exported, runs):
    folder = exported / "hf"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "judgments.parquet", "pairs.parquet"]
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    configs = {c["config_name"]: c for c in front["configs"]}
    assert set(configs) == {"pairs", "judgments"} and configs["pairs"].get("default") is True
    for name, cfg in configs.items():
        path = folder / cfg["data_files"][0]["path"]
        assert path.is_file()
        frame = pl.read_parquet(path)
        assert frame.columns == list(COLUMNS["loo"][name]) and frame.height > 0
    assert runs.a in card and "`chosen`:" in card and "**SIMULATED.**" in card and "`simulated`:" in card
    assert pl.read_parquet(folder / "pairs.parquet").to_dicts() == _lines(exported / "pairs.jsonl")


def test_hf_folder_loads_with_datasets(exported):
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed (it is not needed to write the folder)")
    pairs = datasets.load_dataset(str(exported / "hf"))["train"]
    judgments = datasets.load_dataset(str(exported / "hf"), "judgments")["train"]
    assert pairs.column_names == PAIR_COLUMNS and judgments.column_names == JUDGMENT_COLUMNS


def test_export_errors(runs, cli, tmp_path):
    r = cli(runs.root, "export", "no-such-run", "--format", "jsonl")
    assert r.returncode == 2 and "no stored run matches" in r.stderr and "Traceback" not in r.stderr
    r = cli(runs.root, "export", runs.agreement, "--format", "jsonl", "-o", tmp_path / "x.jsonl")
    assert r.returncode == 2 and "no preference pairs" in r.stderr and "loo or dpf or wikipersona" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.jsonl").exists()
    r = cli(runs.root, "export", runs.a, "--format", "csv")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_persona_texts_are_kept_only_when_verified(runs, cli, exported, tmp_path):
    """A manifest whose judge template no longer matches the stored judge calls
    (as after editing the spec by hand) exports null persona texts, with a note,
    rather than texts the judge never saw."""
    import shutil

    root = tmp_path / "work"
    target = root / ".persona-exp" / "runs" / "loo" / f"{runs.a}-edited"
    shutil.copytree(runs.folder(runs.a), target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["spec"]["experiment"]["judge_template"] = manifest["spec"]["experiment"]["judge_template"].replace("role-playing", "playing")
    manifest["run_id"] = target.name
    (target / "manifest.json").write_text(json.dumps(manifest))
    r = cli(root, "export", target.name, "--format", "jsonl", "-o", tmp_path / "pairs.jsonl")
    assert r.returncode == 0, r.stderr
    assert "could not be rebuilt exactly" in r.stderr
    rows = _lines(tmp_path / "pairs.jsonl")
    assert rows and all(row["persona"] is None and row["persona_without"] is None for row in rows)
    assert rows == [{**row, "persona": None, "persona_without": None} for row in _lines(exported / "pairs.jsonl")]  # everything else intact
