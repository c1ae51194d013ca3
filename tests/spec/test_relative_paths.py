"""Input files named in a spec are read relative to the spec's folder (or, when
given with --set, to the working directory), whatever folder the command runs in."""

from __future__ import annotations

import os
import re
import typing
from importlib import resources
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from persona_exp.errors import SpecError
from persona_exp.pipeline import load_spec, procedural_population_path
from persona_exp.spec.experiment import ExperimentSpec
from persona_exp.spec.paths import INPUT_FILES

ROOT = Path(__file__).resolve().parents[2]


def spec_data(name: str) -> dict:
    return yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text(encoding="utf-8"))


def write(folder: Path, data: dict, name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def questions(folder: Path, name: str = "questions.jsonl") -> Path:
    """A PRISM-format prompt file (the embedded questions)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(resources.files("persona_exp.prompts").joinpath("default_prompts.jsonl").read_bytes())
    return path


def loo_with_prompts(source: str) -> dict:
    data = spec_data("loo")
    data["prompts"] = {"source": source}
    return data


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The working directory: a folder that is neither the spec's nor its parent."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_a_relative_path_is_read_from_the_spec_folder(tmp_path, elsewhere):
    target = questions(tmp_path / "project" / "data")
    spec = write(tmp_path / "project" / "experiments", loo_with_prompts("../data/questions.jsonl"))
    loaded = load_spec(spec)
    assert loaded.prompts.source == str(target)
    assert Path(loaded.prompts.source).is_absolute() and ".." not in Path(loaded.prompts.source).parts
    # the same spec loaded through a relative spec path, from its own folder
    os.chdir(spec.parent)
    assert load_spec("spec.yaml").prompts.source == str(target)


def test_an_absolute_path_is_kept(tmp_path, elsewhere):
    target = questions(tmp_path / "data")
    spec = write(tmp_path / "project", loo_with_prompts(str(target)))
    assert load_spec(spec).prompts.source == str(target)


def test_a_path_given_with_set_is_read_from_the_working_directory(tmp_path, elsewhere):
    here = questions(elsewhere, "mine.jsonl")
    questions(tmp_path / "project", "mine.jsonl")  # the same name next to the spec must not be the one read
    spec = write(tmp_path / "project", spec_data("loo"))
    assert load_spec(spec, ["prompts.source=mine.jsonl"]).prompts.source == str(here)
    assert load_spec(spec, ["prompts={source: mine.jsonl}"]).prompts.source == str(here)


def test_keywords_and_output_paths_stay_as_written(tmp_path, elsewhere):
    data = spec_data("loo")
    data["output"] = {"dir": "results", "cache": "results/calls.sqlite"}
    loaded = load_spec(write(tmp_path / "project", data))
    assert loaded.prompts.source == "default"
    assert loaded.output.dir == "results" and loaded.output.cache == "results/calls.sqlite"


def test_a_missing_file_names_the_spec_line_field_and_where_it_looked(tmp_path, elsewhere, spec_error):
    spec = write(tmp_path / "project", loo_with_prompts("nowhere.jsonl"))
    line = spec.read_text().splitlines().index("prompts:") + 2
    msg = spec_error(spec, [f":{line}:", "prompts.source", "nowhere.jsonl", str(tmp_path / "project" / "nowhere.jsonl"),
                            "spec file's folder"])
    assert str(elsewhere) not in msg


def test_a_missing_file_from_set_names_the_override(tmp_path, elsewhere):
    spec = write(tmp_path / "project", spec_data("loo"))
    with pytest.raises(SpecError) as err:
        load_spec(spec, ["prompts.source=gone.jsonl"])
    msg = str(err.value)
    assert msg.startswith("--set prompts.source=gone.jsonl: prompts.source:")
    assert str(elsewhere / "gone.jsonl") in msg and "working directory" in msg


def test_a_folder_is_not_a_file(tmp_path, elsewhere, spec_error):
    (tmp_path / "project" / "data").mkdir(parents=True)
    data = spec_data("agreement")
    data["experiment"]["human"] = "data"
    spec_error(write(tmp_path / "project", data), ["experiment.human", "is a folder, not a file"])


def test_population_and_annotation_files_resolve_too(tmp_path, elsewhere):
    project = tmp_path / "project"
    project.mkdir()
    people = project / "people.yaml"
    people.write_bytes(resources.files("persona_exp.population").joinpath("data", "famous_people.yaml").read_bytes())
    data = spec_data("wikipersona")
    data["population"]["people"] = "people.yaml"
    assert load_spec(write(project, data, "wiki.yaml")).population.people == str(people)

    (project / "human.csv").write_text("item_id,annotator,choice\n", encoding="utf-8")
    data = spec_data("agreement")
    data["experiment"]["human"] = "human.csv"
    assert load_spec(write(project, data, "agree.yaml")).experiment.human == str(project / "human.csv")


def test_the_population_file_key_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    (project / "people.yaml").write_bytes(resources.files("persona_exp.population").joinpath("data", "famous_people.yaml").read_bytes())
    data = spec_data("wikipersona")
    data["population"]["people"] = "../people.yaml"
    write(project / "experiments", data, "wiki.yaml")
    monkeypatch.chdir(project)
    from_root = procedural_population_path(load_spec("experiments/wiki.yaml"), Path(".persona-exp"))
    monkeypatch.chdir(project / "experiments")
    from_inside = procedural_population_path(load_spec("wiki.yaml"), Path(".persona-exp"))
    assert from_root == from_inside


def _fields(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    """(path, annotation, description) of every field of the spec models,
    following nested models and the members of unions."""
    for name, info in model.model_fields.items():
        path = prefix + (name,)
        yield path, info.annotation, info.description or ""
        for arg in [info.annotation, *typing.get_args(info.annotation)]:
            for inner in [arg, *typing.get_args(arg)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from _fields(inner, path)


def test_every_file_field_of_the_spec_is_resolved():
    fields = {path: (annotation, description) for path, annotation, description in _fields(ExperimentSpec)}
    for path in INPUT_FILES:
        assert path in fields, f"{'.'.join(path)} is not a spec field any more"
    # a text field whose description speaks of a file is an input, except where results go
    files = {
        path for path, (annotation, description) in fields.items()
        if annotation in (str, typing.Optional[str]) and re.search(r"\b(file|csv|yaml|jsonl?)\b", description, re.I) and path[0] != "output"
    }
    assert len(files) >= 5, sorted(files)
    assert files <= set(INPUT_FILES), sorted(files - set(INPUT_FILES))
