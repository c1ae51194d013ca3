"""Every call of a run can be audited: `show --calls` prints what it was sent
(slots filled with the answers it read), what the model answered and how it
was read, filtered by step and persona."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")
SMALL = ["--set", "population.size=300", "--set", "experiment.attributes=[age, religion]", "--set", "experiment.n_personas=3",
         "--set", "experiment.n_questions=2", "--set", "experiment.n_resamples=200", "--no-progress"]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_show_calls_gives_each_judges_inputs_and_verdict(tmp_path):
    assert cli(tmp_path, "run", str(SPEC), *SMALL).returncode == 0
    run_dir = next((tmp_path / ".persona-exp" / "runs" / "loo").iterdir())
    calls = pl.read_parquet(run_dir / "calls.parquet")
    assert pl.read_parquet(run_dir / "transcripts.parquet")["key"].sort().to_list() == calls["key"].sort().to_list()
    design = pl.read_parquet(run_dir / "design.parquet")
    item = design.row(0, named=True)
    text = dict(zip(calls["key"], calls["text"]))

    out = cli(tmp_path, "show", "latest", "--calls", "--step", "judge", "--limit", "1000", "--json")
    assert out.returncode == 0, out.stderr
    judged = {r["key"]: r for r in json.loads(out.stdout)}
    assert len(judged) == calls.filter(pl.col("step") == "judge").height
    shown = judged[item["judge_with_key"]]
    sent = shown["messages"][-1]["content"]
    # The judge saw both answers exactly as the generator wrote them (the revision as parsed), and its verdict is its answer.
    assert text[item["base_key"]] in sent
    assert shown["text"] == shown["value"] and shown["text"] in ("A", "B")
    assert all(r["messages"] and r["status"] == "ok" for r in judged.values())

    mine = cli(tmp_path, "show", "latest", "--calls", "--persona", item["persona_id"], "--limit", "1000", "--json")
    steps = {r["step"] for r in json.loads(mine.stdout)}
    assert steps == {"base_answer", "critique", "revise", "judge"}
    keys = {r["key"] for r in json.loads(mine.stdout)}
    assert {item["judge_with_key"], item["judge_without_key"], item["revise_key"]} <= keys

    printed = cli(tmp_path, "show", "latest", "--calls", "--step", "judge", "--limit", "1")
    assert printed.returncode == 0 and "--- user:" in printed.stdout and "--- answer:" in printed.stdout and "1 of" in printed.stdout
    bad = cli(tmp_path, "show", "latest", "--calls", "--step", "judgee")
    assert bad.returncode == 2 and "judge" in bad.stderr and "Traceback" not in bad.stderr
