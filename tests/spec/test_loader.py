"""Spec loading: every malformed spec gives a located, one-paragraph error."""

import pytest
from pydantic import Field

from persona_exp.errors import SpecError
from persona_exp.spec import ModelConfig, Strict, load


class Tiny(Strict):
    name: str
    seed: int = 0
    n: int = Field(10, ge=1)
    models: dict[str, ModelConfig]
    tags: list[str] = []


GOOD = """\
name: demo
seed: 3
models:
  judge:
    model: sim/judge
    temperature: 0
tags: [a, b]
"""


def write(tmp_path, text):
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def error_of(tmp_path, text, overrides=()):
    with pytest.raises(SpecError) as info:
        load(write(tmp_path, text), Tiny, list(overrides))
    return str(info.value)


def test_good_spec_loads(tmp_path):
    spec, _ = load(write(tmp_path, GOOD), Tiny)
    assert spec.seed == 3 and spec.models["judge"].model == "sim/judge"


def test_bad_yaml_names_line_and_column(tmp_path):
    msg = error_of(tmp_path, "name: demo\nmodels: {judge: [\n")
    assert msg.startswith(f"{tmp_path / 'spec.yaml'}:3:1:") and "not valid YAML" in msg


def test_unknown_key_points_at_the_key(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("    temperature: 0", "    temprature: 0"))
    assert ":6:5: models.judge.temprature: unknown key" in msg


def test_wrong_type_points_at_the_value(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("seed: 3", "seed: three"))
    assert ":2:7: seed:" in msg and "'three'" in msg


def test_negative_n_is_located(tmp_path):
    msg = error_of(tmp_path, GOOD + "n: -4\n")
    assert ":8:4: n:" in msg and "greater than or equal to 1" in msg


def test_missing_field_points_at_its_parent(tmp_path):
    msg = error_of(tmp_path, GOOD.replace("    model: sim/judge\n", ""))
    assert ":5:5: models.judge.model: this field is required" in msg


def test_duplicate_keys_are_refused(tmp_path):
    msg = error_of(tmp_path, GOOD + "seed: 4\n")
    assert ":8:1: seed:" in msg and "appears twice" in msg


def test_overrides_apply_and_are_located(tmp_path):
    spec, _ = load(write(tmp_path, GOOD), Tiny, ["models.judge.model=openai/gpt-4o", "seed=9", "tags.1=z"])
    assert (spec.models["judge"].model, spec.seed, spec.tags) == ("openai/gpt-4o", 9, ["a", "z"])
    msg = error_of(tmp_path, GOOD, ["models.judge.temperature=hot"])
    assert msg.startswith("--set models.judge.temperature=hot: models.judge.temperature:")
    assert "does not exist" in error_of(tmp_path, GOOD, ["tags.7=x"])
    assert "key.path=value" in error_of(tmp_path, GOOD, ["seed"])


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load(tmp_path / "nope.yaml", Tiny)


def test_sim_settings_enter_sampling_but_transport_does_not():
    a = ModelConfig(model="sim/judge", concurrency=2, timeout=5)
    b = ModelConfig(model="sim/judge", sim={"effects": {"age": 3.0}})
    assert a.sampling() != b.sampling()
    assert "concurrency" not in a.sampling() and "timeout" not in a.sampling()
    assert "sim" not in ModelConfig(model="openai/gpt-4o").sampling()


def test_a_stored_resolved_spec_validates_again():
    from pathlib import Path

    from persona_exp.pipeline import load_spec
    from persona_exp.spec.experiment import ExperimentSpec

    root = Path(__file__).resolve().parents[2] / "experiments"
    for name in ("loo", "dpf", "agreement", "conditioning"):
        spec = load_spec(root / f"{name}.yaml")
        assert ExperimentSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    start = time.monotonic()
    msg = error_of(tmp_path, "name: demo\n" + "\n".join(lines) + "\n")
    assert time.monotonic() - start < 10
    assert "spec.yaml:" in msg and "more than 200,000 values" in msg


def test_deep_nesting_is_refused(tmp_path):
    msg = error_of(tmp_path, "name: demo\ntags: " + "[" * 100 + "]" * 100 + "\n")
    assert "spec.yaml:" in msg and "nests deeper than 64 levels" in msg
    msg = error_of(tmp_path, "name: demo\ntags: " + "[" * 1500 + "]" * 1500 + "\n")
    assert "spec.yaml" in msg and "nests too deeply" in msg


def test_the_run_seed_is_bounded(tmp_path, spec_error):
    for seed, words in (("-1", "greater than or equal to 0"), (str(2**70), "less than or equal to")):
        path = tmp_path / "s.yaml"
        path.write_text(f"name: d\nmodels:\n  generator: {{model: sim/generator}}\n  judge: {{model: sim/judge}}\nexperiment: {{kind: loo}}\nseed: {seed}\n")
        spec_error(path, ["6:7", "seed", words])
