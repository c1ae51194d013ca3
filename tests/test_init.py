"""The example specs ship with the package, and `persona-exp init` starts a
project from them that runs without a source checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from persona_exp.spec.shipped import FOLDER, shipped_specs

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("persona-exp")
SMALL = ["--set", "population.size=300", "--set", "experiment.n_personas=4", "--set", "experiment.n_questions=3",
         "--set", "experiment.attributes=[age, sex]", "--no-progress"]


def cli(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def run_json(cwd: Path, spec: str, *extra: str) -> dict:
    r = cli(cwd, "run", spec, *SMALL, *extra, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    out["run_dir"] = os.path.normpath(cwd / out["run_dir"])  # printed relative to the run's working directory
    return out


def manifest(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))


def test_the_shipped_specs_are_the_experiments_folder():
    top = sorted(p.name for p in (ROOT / "experiments").glob("*.yaml"))
    shipped = shipped_specs()
    assert list(shipped) == top and len(top) >= 5
    for name, item in shipped.items():
        assert item.read_bytes() == (ROOT / "experiments" / name).read_bytes(), name


def test_the_package_links_to_the_experiments_folder_and_the_wheel_include_follows_it():
    tomllib = pytest.importorskip("tomllib")
    link = ROOT / "persona_exp" / FOLDER
    assert link.is_symlink() and link.resolve() == (ROOT / "experiments").resolve()
    include = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["maturin"]["include"]
    patterns = [i["path"] for i in include if isinstance(i, dict) and "wheel" in i["format"]]
    matched = sorted(p.name for pattern in patterns for p in ROOT.glob(pattern))
    assert matched == sorted(p.name for p in (ROOT / "experiments").glob("*.yaml"))


def _maturin() -> str | None:
    beside = Path(sys.executable).with_name("maturin")
    return str(beside) if beside.exists() else shutil.which("maturin")


@pytest.mark.skipif(_maturin() is None, reason="maturin is not installed (pip install maturin) to build a wheel")
def test_a_built_wheel_ships_the_specs_and_init_works_from_it(tmp_path):
    """Builds the wheel (about 30 s when the Rust core is compiled already) and
    runs `init` from the unpacked wheel, with no source checkout on the path first."""
    out = tmp_path / "dist"
    build = subprocess.run([_maturin(), "build", "--release", "-o", str(out), "--interpreter", sys.executable],
                           cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for spec in (ROOT / "experiments").glob("*.yaml"):
        assert f"persona_exp/{FOLDER}/{spec.name}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import persona_exp; print(persona_exp.__file__)"], cwd=project, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(site)
    r = subprocess.run([sys.executable, "-m", "persona_exp", "init"], cwd=project, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (project / "experiments" / "loo.yaml").read_bytes() == (ROOT / "experiments" / "loo.yaml").read_bytes()


def test_init_copies_the_specs_with_a_readme_and_says_what_it_wrote(tmp_path):
    r = cli(tmp_path, "init", "proj")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "proj" / "experiments"
    for name, item in shipped_specs().items():
        assert (folder / name).read_bytes() == item.read_bytes()
        assert f"wrote {Path('proj') / 'experiments' / name}" in r.stdout
    assert "cd proj && persona-exp run experiments/loo.yaml" in r.stdout
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for name, item in shipped_specs().items():
        description = yaml.safe_load(item.read_text(encoding="utf-8"))["description"]
        assert f"| `experiments/{name}` | {description} |" in readme
    for command in ("persona-exp run experiments/loo.yaml", "persona-exp diff ", "persona-exp report "):
        assert command in readme


def test_init_refuses_to_overwrite_without_force(tmp_path):
    assert cli(tmp_path, "init").returncode == 0
    mine = tmp_path / "experiments" / "loo.yaml"
    mine.write_text("name: mine\n", encoding="utf-8")
    r = cli(tmp_path, "init")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "already exist" in r.stderr and "--force" in r.stderr and "nothing was written" in r.stderr
    assert mine.read_text(encoding="utf-8") == "name: mine\n"
    r = cli(tmp_path, "init", "--force")
    assert r.returncode == 0 and f"overwrote {Path('experiments') / 'loo.yaml'}" in r.stdout
    assert mine.read_bytes() == (ROOT / "experiments" / "loo.yaml").read_bytes()


def test_init_into_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    r = cli(tmp_path, "init", "notes.txt")
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr and "Traceback" not in r.stderr


def test_a_spec_from_init_runs_where_it_was_copied(tmp_path):
    assert cli(tmp_path, "init").returncode == 0
    r = cli(tmp_path, "run", "experiments/loo.yaml", *SMALL)
    assert r.returncode == 0, r.stderr
    runs = list((tmp_path / ".persona-exp" / "runs" / "loo").iterdir())
    assert len(runs) == 1 and manifest(runs[0])["counts"]["calls"] > 0


def test_a_spec_with_a_file_input_runs_from_any_folder_fully_cached(tmp_path):
    """The spec reads questions.jsonl next to it. Run from inside experiments/
    (results sent to the project's store), then from the project folder, then
    from a copy of the whole project elsewhere: the plan is the same and every
    call comes from the cache."""
    project = tmp_path / "project"
    (project / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "persona_exp" / "prompts" / "default_prompts.jsonl", project / "experiments" / "questions.jsonl")
    data = yaml.safe_load((ROOT / "experiments" / "loo.yaml").read_text(encoding="utf-8"))
    data["prompts"] = {"source": "questions.jsonl"}
    (project / "experiments" / "loo.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    first = run_json(project / "experiments", "loo.yaml", "--set", "output.dir=../.persona-exp")
    assert first["counts"]["ran"] > 0
    assert Path(first["run_dir"]).is_relative_to(project / ".persona-exp")
    second = run_json(project, "experiments/loo.yaml")
    assert second["counts"]["cached"] == second["counts"]["calls"] == first["counts"]["calls"]
    assert second["counts"]["ran"] == 0
    assert manifest(second["run_dir"])["plan_hash"] == manifest(first["run_dir"])["plan_hash"]
    assert manifest(second["run_dir"])["spec"]["prompts"]["source"] == str(project / "experiments" / "questions.jsonl")

    moved = tmp_path / "moved"
    shutil.copytree(project, moved)
    third = run_json(moved, "experiments/loo.yaml")
    assert third["counts"]["ran"] == 0 and third["counts"]["cached"] == first["counts"]["calls"]
    assert manifest(third["run_dir"])["plan_hash"] == manifest(first["run_dir"])["plan_hash"]
    assert manifest(third["run_dir"])["spec"]["prompts"]["source"] == str(moved / "experiments" / "questions.jsonl")
