"""Where a spec error points: the exact line and column, for problems found
while reading the file, while validating it, and later while planning."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from persona_exp.cli import main
from persona_exp.errors import DataError, PlanError, SpecError, did_you_mean
from persona_exp.spec import parse_yaml, read_spec_file
from persona_exp.spec.loader import field_path, located_errors

ROOT = Path(__file__).resolve().parents[2]


def test_field_paths_and_their_positions():
    assert field_path("population.filters[1]") == ("population", "filters", 1)
    assert field_path("models.judge.sim.effects") == ("models", "judge", "sim", "effects")
    loc = parse_yaml("name: x\npopulation:\n  filters:\n    - age >= 18\n    - sex == Female\n", "s.yaml")
    assert loc.of("population.filters[1]") == "s.yaml:5:7"
    assert loc.of("population.filters") == "s.yaml:4:5"
    assert loc.of("population.filters", key=True) == "s.yaml:3:3"
    assert loc.of("population.size") == "s.yaml:3:3"  # not written: its block
    assert loc.of("experiment.k") == "s.yaml:1:1"  # nothing of it written: the top


def test_the_nearest_name_is_suggested_or_nothing():
    assert did_you_mean("religon", ["age", "religion", "region_of_birth"]) == " (did you mean 'religion'?)"
    assert did_you_mean("AGE", ["age", "sex"]) == " (did you mean 'age'?)"
    assert did_you_mean("zzzz", ["age", "sex"]) == ""
    assert did_you_mean(None, ["age"]) == "" and did_you_mean("", ["age"]) == ""


@pytest.mark.parametrize(
    ("content", "where_and_what"),
    [
        (b"name: x\ndescription: caf\xe9 au lait\n", "2:17: the spec is not UTF-8 text (byte 0xe9"),  # bytes that are not UTF-8
        (b"name: x\nseed: 1\x00\n", "2:8: this is not valid YAML (character U+0000 "),  # a control character
    ],
)
def test_unreadable_bytes_are_located(tmp_path, content, where_and_what):
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        read_spec_file(path)
    assert str(info.value).startswith(f"{path}:{where_and_what}")


def test_errors_after_validation_get_their_fields_position(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nexperiment:\n  kind: loo\n  n_questions: 900\n")
    # The message starts with the field: that field's line.
    with pytest.raises(PlanError) as info, located_errors(path, (), _spec_model()):
        raise PlanError("experiment.n_questions is 900 but only 120 prompts remain after filtering.")
    assert str(info.value) == f"{path}:4:16: experiment.n_questions is 900 but only 120 prompts remain after filtering."
    # The error names its field, or the code says which block it serves.
    with pytest.raises(DataError) as info, located_errors(path, (), _spec_model(), field="population"):
        raise DataError("the filters leave no person.", field="experiment.kind")
    assert str(info.value) == f"{path}:3:9: experiment.kind: the filters leave no person."
    with pytest.raises(DataError) as info, located_errors(path, (), _spec_model(), field="experiment"):
        raise DataError("the design is empty.")
    assert str(info.value) == f"{path}:3:3: experiment: the design is empty."
    # A --set item is named instead of a line; an error located already stays as it was.
    with pytest.raises(PlanError) as info, located_errors(path, ["experiment.n_questions=5000"], _spec_model()):
        raise PlanError("experiment.n_questions is 5000 but only 120 prompts remain.")
    assert str(info.value).startswith("--set experiment.n_questions=5000: experiment.n_questions is 5000")
    with pytest.raises(SpecError) as info, located_errors(path, (), _spec_model(), field="population"):
        raise SpecError("people.yaml:3:4: axes: unknown key.")
    assert str(info.value) == "people.yaml:3:4: axes: unknown key."


def _spec_model():
    from persona_exp.spec.experiment import ExperimentSpec

    return ExperimentSpec


def test_a_missing_api_key_points_at_its_line(tmp_path, monkeypatch, capsys):
    """Credentials are checked after planning starts; the message still names the line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    data = yaml.safe_load((ROOT / "experiments" / "loo.yaml").read_text(encoding="utf-8"))
    data["models"]["judge"] = {"model": "openai/gpt-4o", "api_key_env": "NO_SUCH_KEY_VARIABLE"}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "api_key_env" in text)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}:" in err and "models.judge.api_key_env: the environment variable NO_SUCH_KEY_VARIABLE is not set" in err


def test_an_empty_spec_names_line_one(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text("# nothing yet\n")
    assert main(["plan", str(path)]) == 2
    assert f"{path}:1:1: the spec is empty" in capsys.readouterr().err


def test_a_misspelt_model_role_is_named_at_its_line(tmp_path, capsys):
    text = (ROOT / "experiments" / "loo.yaml").read_text()
    assert "\n  judge:\n" in text
    spec = tmp_path / "loo.yaml"
    spec.write_text(text.replace("\n  judge:\n", "\n  judeg:\n"))
    line = text.splitlines().index("  judge:") + 1
    assert main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line}:3" in err and "needs a model for the role 'judge', and models.judeg looks like a misspelling of it" in err
