"""`persona-exp population SPEC`: builds or loads a spec's population and reports on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOO = ROOT / "experiments" / "loo.yaml"


def cli(monkeypatch, argv: list[str]) -> int:
    """The real `persona-exp` entry point, in this process."""
    from persona_exp.cli import main

    return main(argv)


def base_args(tmp_path: Path, size: int = 60) -> list[str]:
    return ["population", str(LOO), "--set", f"output.dir={tmp_path / 'out'}", "--set", f"population.size={size}"]


def stored(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out" / "populations").glob("*.parquet"))


def test_builds_then_loads_from_the_population_cache(tmp_path, monkeypatch, capsys):
    assert cli(monkeypatch, base_args(tmp_path) + ["--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    files = stored(tmp_path)
    assert len(files) == 1 and first["built"] is True and first["path"] == str(files[0])
    assert first["size"] == 60 and first["experiment"] == "loo"
    report = first["report"]
    assert report["filters"]["applied"] == ["age >= 18"]
    assert set(report["flagged"]) and first["flagged_total"] == sum(report["flagged"].values()) and first["rejected_total"] == 0
    assert {e["attribute"] for e in report["representativeness"]} >= {"age", "sex", "education", "employment_status", "race"}

    assert cli(monkeypatch, base_args(tmp_path) + ["--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["built"] is False and second["path"] == first["path"]
    assert second["key"] == first["key"]
    assert stored(tmp_path) == files  # nothing new was written

    from persona_exp.population import load_population

    assert load_population(files[0]).key == first["key"]

    # A population stored by an older version (another key scheme) is built again, not an error.
    side = files[0].with_suffix(".json")
    meta = json.loads(side.read_text(encoding="utf-8"))
    side.write_text(json.dumps({k: v for k, v in meta.items() if k != "key_scheme"}), encoding="utf-8")
    assert cli(monkeypatch, base_args(tmp_path) + ["--json"]) == 0
    third = json.loads(capsys.readouterr().out)
    assert third["key"] == first["key"] and stored(tmp_path) == files
    assert load_population(files[0]).key == first["key"]


def test_text_output_has_size_rejections_and_the_table(tmp_path, monkeypatch, capsys):
    assert cli(monkeypatch, base_args(tmp_path) + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert cli(monkeypatch, base_args(tmp_path) + ["--detail"]) == 0
    out = capsys.readouterr().out
    assert "population of loo: 60 personas (loaded from" in out
    assert "age >= 18 -> " in out and "kept, breaking a consistency rule" in out and "distinct census records behind the 60 personas drawn" in out
    assert "Representativeness" in out
    for entry in report["representativeness"]:  # every attribute's row, with the TVD the report holds
        row = next(line for line in out.splitlines() if line.strip("│┃ ").startswith(entry["attribute"] + " "))
        # the default has no housing record: its household attributes are reported missing, not matched
        assert ("missing" if entry["tvd"] is None else f"{entry['tvd']:.3f}") in row, entry["attribute"]
    sex = next(e for e in report["representativeness"] if e["attribute"] == "sex")
    assert all(d["value"] in out for d in sex["distribution"])  # --detail lists every category


def test_head_prints_personas_as_prompt_text(tmp_path, monkeypatch, capsys):
    assert cli(monkeypatch, base_args(tmp_path, size=20) + ["--head", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- p00") == 2 and "\nAge: " in out and "\nSex: " in out


def test_bad_spec_exits_2_naming_the_field(tmp_path, monkeypatch, capsys):
    assert cli(monkeypatch, base_args(tmp_path, size=0)) == 2
    err = capsys.readouterr().err
    assert "population.size" in err and "Traceback" not in err
    assert stored(tmp_path) == []


def _famous_supported() -> bool:
    from persona_exp.population import PopulationSpec

    return "people" in PopulationSpec.model_fields


def test_famous_population_prints_its_strata(tmp_path, monkeypatch, capsys):
    if _famous_supported():  # the spec hook is in place: the real path
        args = ["population", str(LOO), "--set", f"output.dir={tmp_path / 'out'}", "--set", "population={source: famous, size: 8}"]
    else:  # not yet: the same population handed to the command
        import persona_exp.pipeline as pipeline
        from persona_exp.population import build_famous_population

        monkeypatch.setattr(pipeline, "_population", lambda spec, root: build_famous_population(size=8, seed=spec.seed))
        args = ["population", str(LOO), "--set", f"output.dir={tmp_path / 'out'}"]
    assert cli(monkeypatch, args + ["--head", "1"]) == 0
    out = capsys.readouterr().out
    assert "population of loo: 8 personas" in out
    assert "famous-person strata" in out and "politics" in out and "Progressive" in out
    assert "Representativeness" not in out
    assert "--- politics:" in out or "--- religion:" in out or "--- profession:" in out or "--- region:" in out


@pytest.mark.parametrize("flag", [["--json"], []])
def test_missing_spec_is_a_clear_error(tmp_path, monkeypatch, capsys, flag):
    assert cli(monkeypatch, ["population", str(tmp_path / "none.yaml"), *flag]) == 2
    assert "no such spec file" in capsys.readouterr().err
