"""A run with a `sim/` role says so everywhere it is shown or stored: the
headline title of `run` and `show`, metrics.json, the manifest, every exported
row, the dataset card and the HTML report; a run on a (local, fake) real model
says nothing of the kind."""

from __future__ import annotations

import json

import polars as pl
import yaml

from pathlib import Path

from persona_exp.store import SIMULATED

LOO = Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml"
SMALL_LOO = ["--set", "population.size=300", "--set", "experiment.attributes=[age,sex,religion]", "--set", "experiment.n_personas=6",
             "--set", "experiment.n_questions=5", "--set", "experiment.n_resamples=200", "--no-progress"]  # as conftest's runs: all cached


def _folder_files(runs, run_id):
    folder = runs.folder(run_id)
    return json.loads((folder / "manifest.json").read_text()), json.loads((folder / "metrics.json").read_text())


def _exports(cli, root, run_id, out):
    for args in (["--format", "jsonl", "-o", out / "pairs.jsonl"], ["--format", "jsonl", "--table", "judgments", "-o", out / "judgments.jsonl"],
                 ["--format", "parquet", "-o", out / "pairs.parquet"], ["--format", "hf", "-o", out / "hf"]):
        r = cli(root, "export", run_id, *args)
        assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for name in ("pairs.jsonl", "judgments.jsonl") for line in (out / name).read_text().splitlines()]
    frames = [pl.read_parquet(out / "pairs.parquet"), pl.read_parquet(out / "hf" / "pairs.parquet"), pl.read_parquet(out / "hf" / "judgments.parquet")]
    card = (out / "hf" / "README.md").read_text(encoding="utf-8")
    return rows, frames, card


def _report(cli, root, run_id, out):
    r = cli(root, "report", run_id, "-o", out / "report.html")
    assert r.returncode == 0, r.stderr
    return (out / "report.html").read_text(encoding="utf-8")


def test_simulated_run_is_labelled_everywhere(runs, cli, tmp_path):
    again = cli(runs.root, "run", LOO, *SMALL_LOO)  # all cached: prints the same headline
    assert again.returncode == 0, again.stderr
    title_line = again.stdout.splitlines()[0]
    assert title_line.startswith("Leave-one-out") and SIMULATED in title_line
    show = cli(runs.root, "show", runs.a)
    assert show.returncode == 0 and SIMULATED in show.stdout

    manifest, metrics = _folder_files(runs, runs.a)
    assert manifest["simulated"] is True and manifest["simulated_roles"] == ["generator", "judge"]
    assert metrics["simulated"] is True and SIMULATED in metrics["title"]

    rows, frames, card = _exports(cli, runs.root, runs.a, tmp_path)
    assert rows and all(r["simulated"] is True for r in rows)
    assert all(f.height and f["simulated"].dtype == pl.Boolean and f["simulated"].all() for f in frames)
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["simulated"] is True and "simulated" in front["tags"]
    assert "**SIMULATED.**" in card.split("## Columns")[0] and "`simulated`:" in card

    page = _report(cli, runs.root, runs.a, tmp_path)
    assert 'id="simulated-banner"' in page and page.index("simulated-banner") < page.index('id="overview"')
    diff = cli(runs.root, "report", runs.b, "--against", runs.a, "-o", tmp_path / "diff.html", "--n-resamples", "100")
    assert diff.returncode == 0 and 'id="simulated-banner"' in (tmp_path / "diff.html").read_text(encoding="utf-8")


def _fake_model(body: dict) -> str:
    """Answers in the forms the default LOO templates ask for."""
    prompt = body["messages"][-1]["content"]
    if "Response A" in prompt:
        return "A"
    if "REVISED PREFERENCE" in prompt:
        return "REVISED PREFERENCE: A plainer answer that fits the reader.\nDONE"
    return "Some people weigh costs, others principles; it depends on the household."


def test_a_real_model_run_is_not_labelled(cli, tmp_path, openai_server):
    state, url = openai_server
    state.reply = _fake_model
    sets = [a for role in ("generator", "judge") for a in ("--set", f"models.{role}.model=openai/test-model", "--set", f"models.{role}.api_base={url}")]
    r = cli(tmp_path, "run", LOO, *SMALL_LOO, *sets, "--set", "experiment.attributes=[age]", "--set", "experiment.n_personas=3",
            "--set", "experiment.n_questions=2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert state.requests and "SIMULATED" not in r.stdout
    run_id = next((tmp_path / ".persona-exp" / "runs" / "loo").iterdir()).name
    assert "SIMULATED" not in cli(tmp_path, "show", run_id).stdout
    folder = tmp_path / ".persona-exp" / "runs" / "loo" / run_id
    manifest, metrics = json.loads((folder / "manifest.json").read_text()), json.loads((folder / "metrics.json").read_text())
    assert manifest["simulated"] is False and manifest["simulated_roles"] == [] and metrics["simulated"] is False

    rows, frames, card = _exports(cli, tmp_path, run_id, tmp_path)
    assert rows and all(r["simulated"] is False for r in rows)
    assert all(not f["simulated"].any() for f in frames)
    assert yaml.safe_load(card.split("---\n")[1])["simulated"] is False and "SIMULATED" not in card
    assert "simulated-banner" not in _report(cli, tmp_path, run_id, tmp_path)
