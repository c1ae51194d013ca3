"""Every number a spec holds is bounded, so a typo cannot ask for unbounded
work or memory; the bounds leave room for the papers' designs."""

from __future__ import annotations

import types
import typing

import annotated_types as at
import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from persona_exp.errors import SpecError
from persona_exp.spec import load
from persona_exp.spec.experiment import ExperimentSpec

SIM = {"generator": {"model": "sim/generator"}, "judge": {"model": "sim/judge"}}


def numeric_fields(model: type[BaseModel], seen: set | None = None, where: str = "spec"):
    """(path, has a lower bound, has an upper bound, has a description) of every
    int or float field reachable from ``model``, list items and dict values included."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        yield from _numbers(info, info.annotation, list(info.metadata), f"{where}.{name}", seen)


def _numbers(info: FieldInfo, ann, metadata: list, where: str, seen: set):
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(ann)
        inner = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        yield from _numbers(info, base, metadata + inner, where, seen)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(ann):
            if arg is not type(None):
                yield from _numbers(info, arg, metadata, where, seen)
    elif origin in (list, dict):
        yield from _numbers(info, typing.get_args(ann)[-1], [], f"{where}[]", seen)
    elif isinstance(ann, type) and issubclass(ann, BaseModel):
        yield from numeric_fields(ann, seen, where)
    elif ann in (int, float):
        low = any(isinstance(m, (at.Ge, at.Gt)) for m in metadata)
        high = any(isinstance(m, (at.Le, at.Lt)) for m in metadata)
        yield where, low, high, bool(info.description)


def test_every_numeric_field_has_bounds_and_a_description():
    found = list(numeric_fields(ExperimentSpec))
    names = {path for path, *_ in found}
    # The walk reaches every block: models, simulator, population, experiments' parameters, list items.
    for expected in ("spec.seed", "spec.models[].max_tokens", "spec.models[].sim.effects[]", "spec.population.size",
                     "spec.population.llm.oversample", "spec.experiment.k", "spec.experiment.n_resamples", "spec.experiment.pass_k[]",
                     "spec.experiment.n_candidates", "spec.experiment.n_heldout"):
        assert expected in names, expected
    unbounded = [path for path, low, high, _ in found if not (low and high)]
    undescribed = [path for path, *_, described in found if not described and not path.endswith("[]")]
    assert unbounded == [] and undescribed == []


def spec_file(tmp_path, experiment: dict, **blocks) -> str:
    data = {"name": "bounds", "models": SIM, "experiment": experiment, **blocks}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("experiment,blocks", [
    ({"kind": "loo", "n_personas": 40, "k": 3, "n_questions": 20, "n_resamples": 100_000}, {}),  # PERSONA 4.1
    ({"kind": "loo", "n_personas": 1000, "k": 31, "n_questions": 200}, {}),
    ({"kind": "dpf", "n_train": 100, "n_seen_test": 50, "n_heldout": 50}, {"population": {"size": 1586}}),  # 317,200 pairs
    ({"kind": "conditioning", "n_personas": 1586, "n_questions": 100, "samples": 5, "pass_k": [1, 5]}, {}),
    ({"kind": "agreement", "n_personas": 1586, "n_questions": 200}, {}),
    ({"kind": "wikipersona", "n_personal": 100, "n_divergent": 100, "n_candidates": 50, "keep": 4}, {"population": {"source": "famous"}}),
], ids=["loo-paper", "loo-large", "dpf-paper", "conditioning", "agreement", "wikipersona-paper"])
def test_paper_scale_designs_are_within_the_bounds(tmp_path, experiment, blocks):
    spec, _ = load(spec_file(tmp_path, experiment, **blocks), ExperimentSpec)
    assert spec.experiment.kind == experiment["kind"]


@pytest.mark.parametrize("experiment,blocks,field,words", [
    ({"kind": "loo", "k": 1000}, {}, "experiment.k", "less than or equal to 31"),
    ({"kind": "loo", "n_personas": 10**12}, {}, "experiment.n_personas", "less than or equal to 100000"),
    ({"kind": "loo", "n_personas": 1.0e12}, {}, "experiment.n_personas", "less than or equal to 100000"),
    ({"kind": "loo", "n_questions": 1.5}, {}, "experiment.n_questions", "fractional part"),
    ({"kind": "loo", "n_resamples": 10**9}, {}, "experiment.n_resamples", "less than or equal to 100000"),
    ({"kind": "loo", "n_personas": 100_000, "n_questions": 100_000}, {}, "experiment", "more than the 10,000,000 one run can plan"),
    ({"kind": "dpf", "n_train": 10_000}, {"population": {"size": 10_000}}, "experiment.n_train", "more than the 10,000,000"),
    ({"kind": "conditioning", "samples": 2, "pass_k": [1, 5]}, {}, "experiment.pass_k[1]", "samples is 2"),
    ({"kind": "wikipersona", "n_candidates": 4, "keep": 6}, {"population": {"source": "famous"}}, "experiment.keep", "n_candidates = 4"),
    ({"kind": "agreement", "judges": ["judge", "judge"]}, {}, "experiment.judges[1]", "listed more than once"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "replicates": 10**9}}}, "models.judge.replicates", "less than or equal to 1000"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "max_tokens": 10**12}}}, "models.judge.max_tokens", "less than or equal"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "concurrency": 10**6}}}, "models.judge.concurrency", "less than or equal"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "timeout": float("inf")}}}, "models.judge.timeout", "finite"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "sim": {"noise": float("nan")}}}}, "models.judge.sim.noise", "finite"),
    ({"kind": "loo"}, {"models": {**SIM, "judge": {"model": "sim/judge", "sim": {"effects": {"religion": -1}}}}}, "models.judge.sim.effects.religion", "greater than or equal to 0"),
    ({"kind": "loo", "k": True}, {}, "experiment.k", "expected a number, got true"),
], ids=lambda v: v if isinstance(v, str) and "." in v else None)
def test_out_of_bounds_values_are_located_errors(tmp_path, experiment, blocks, field, words):
    path = spec_file(tmp_path, experiment, **blocks)
    with pytest.raises(SpecError) as info:
        load(path, ExperimentSpec)
    message = str(info.value)
    assert message.startswith(f"{path}:") and f": {field}: " in message and words in message, message


def test_a_bound_from_the_command_line_names_the_override(tmp_path):
    with pytest.raises(SpecError) as info:
        load(spec_file(tmp_path, {"kind": "loo"}), ExperimentSpec, ["experiment.k=1000"])
    assert str(info.value).startswith("--set experiment.k=1000: experiment.k: Input should be less than or equal to 31")
