"""Scaling a pilot up pays only for what is new: growing the number of
personas, questions or attributes keeps every existing item and its random
context, so their calls come from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "loo.yaml"
EXE = Path(sys.executable).with_name("persona-exp")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


SMALL = [
    "--set", "population.size=300",
    "--set", "experiment.attributes=[age, sex, religion]",
    "--set", "experiment.n_resamples=200",
]


def _design(out_dir: Path) -> set[tuple[str, str, str]]:
    import polars as pl

    runs = sorted((out_dir / ".persona-exp" / "runs" / "loo").iterdir(), key=lambda p: p.stat().st_mtime)
    items = pl.read_parquet(runs[-1] / "loo_judgments.parquet")
    return {(r["attribute"], r["persona_id"], r["question_id"]) for r in items.iter_rows(named=True)}


def _by_step(out: str) -> dict:
    return json.loads(out)["counts"]["by_step"]


def test_more_personas_more_questions_more_attributes_run_only_the_new_items(tmp_path):
    first = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=4", "--set", "experiment.n_questions=3", "--no-progress", "--json")
    assert first.returncode == 0, first.stderr
    small = _design(tmp_path)
    assert len(small) == 3 * 4 * 3

    grown = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=6", "--set", "experiment.n_questions=3", "--no-progress", "--json")
    assert grown.returncode == 0, grown.stderr
    bigger = _design(tmp_path)
    assert small < bigger and len(bigger) == 3 * 6 * 3
    judge = _by_step(grown.stdout)["judge"]
    # Two judgments per item; only the 2 new personas x 3 attributes x 3 questions are new.
    assert judge["ran"] == 2 * (len(bigger) - len(small)), judge
    assert _by_step(grown.stdout)["base_answer"]["ran"] == 0

    more_q = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=6", "--set", "experiment.n_questions=4", "--no-progress", "--json")
    assert more_q.returncode == 0, more_q.stderr
    with_q = _design(tmp_path)
    assert bigger < with_q and len(with_q) == 3 * 6 * 4
    steps = _by_step(more_q.stdout)
    assert steps["judge"]["ran"] == 2 * (len(with_q) - len(bigger))
    assert steps["base_answer"]["ran"] == 1

    more_a = cli(tmp_path, "run", str(SPEC), *SMALL[:2], "--set", "experiment.attributes=[age, sex, religion, marital_status]",
                 "--set", "experiment.n_resamples=200", "--set", "experiment.n_personas=6", "--set", "experiment.n_questions=4", "--no-progress", "--json")
    assert more_a.returncode == 0, more_a.stderr
    with_a = _design(tmp_path)
    assert with_q < with_a
    assert {a for a, _, _ in with_a - with_q} == {"marital_status"}
    assert _by_step(more_a.stdout)["judge"]["ran"] == 2 * (len(with_a) - len(with_q))


def test_fewer_personas_reuse_a_subset(tmp_path):
    big = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=6", "--set", "experiment.n_questions=3", "--no-progress", "--json")
    assert big.returncode == 0, big.stderr
    before = _design(tmp_path)
    small = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=4", "--set", "experiment.n_questions=2", "--no-progress", "--json")
    assert small.returncode == 0, small.stderr
    assert _design(tmp_path) < before
    assert all(s["ran"] == 0 for s in _by_step(small.stdout).values())


def test_larger_population_keeps_its_personas_and_their_calls(tmp_path):
    first = cli(tmp_path, "run", str(SPEC), *SMALL, "--set", "experiment.n_personas=4", "--set", "experiment.n_questions=3", "--no-progress", "--json")
    assert first.returncode == 0, first.stderr
    before = _design(tmp_path)
    grown = cli(tmp_path, "run", str(SPEC), "--set", "population.size=450", *SMALL[2:], "--set", "experiment.n_personas=4",
                "--set", "experiment.n_questions=3", "--no-progress", "--json")
    assert grown.returncode == 0, grown.stderr
    # The 450 personas begin with the 300 (same people, same ids, same enrichment), and
    # the experiment's first four adults to whom each attribute applies are among them.
    assert _design(tmp_path) == before
    assert all(s["ran"] == 0 for s in _by_step(grown.stdout).values()), grown.stdout


def test_a_real_endpoint_is_sent_only_the_new_items_calls(tmp_path, openai_server):
    """The same scale-up against a local OpenAI-compatible server, counting the
    requests it receives: 2 -> 3 personas sends exactly the new persona's
    judgments, a larger population sends nothing, one more attribute only its."""
    state, url = openai_server
    judge = ["--set", "models.judge.model=openai/test-model", "--set", f"models.judge.api_base={url}", "--set", "models.judge.concurrency=4"]

    def run(*extra: str) -> set[tuple[str, str, str]]:
        out = cli(tmp_path, "run", str(SPEC), *SMALL, *judge, "--set", "experiment.n_questions=2", *extra, "--no-progress", "--json")
        assert out.returncode == 0, out.stderr
        return _design(tmp_path)

    first = run("--set", "experiment.n_personas=2")
    sent = len(state.requests)
    assert sent == 2 * len(first) == 2 * 3 * 2 * 2  # two judgments per item: 3 attributes x 2 personas x 2 questions
    more = run("--set", "experiment.n_personas=3")
    assert len(state.requests) - sent == 2 * (len(more) - len(first)) == 2 * 3 * 1 * 2
    sent = len(state.requests)
    assert run("--set", "experiment.n_personas=3", "--set", "population.size=450") == more
    assert len(state.requests) == sent  # the larger population begins with the same people
    wider = run("--set", "experiment.n_personas=3", "--set", "experiment.attributes=[age, sex, religion, marital_status]")
    assert {a for a, _, _ in wider - more} == {"marital_status"}
    assert len(state.requests) - sent == 2 * (len(wider) - len(more))
