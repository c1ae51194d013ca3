"""`run --executor ray`: Ray actors send the calls, the driver alone writes the
cache. On one local Ray cluster shared by the module (Ray's start-up takes
seconds): the same spec gives the same tables as the local executor, a
provider run sends each call once, and a driver killed with -9 loses nothing it
finished (its rerun sends none of those calls again)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

from persona_exp.cli import main
from persona_exp.execute import CallCache, Runner
from persona_exp.execute.ray_executor import RayExecutor, parse_executor
from persona_exp.errors import InvalidArgumentError
from persona_exp.pipeline import run as run_spec
from persona_exp.plan import Plan
from persona_exp.spec import ModelConfig

FAKE_KEY = "sk-test-FAKEKEY-0123456789abcdef"  # the local server's: the actors read it from the cluster's environment


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster for the module; its address for other drivers."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'persona-exp[ray]')")
    before = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = FAKE_KEY  # the cluster's processes inherit it, as they would a user's key
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - whatever keeps Ray from starting here
        pytest.skip(f"a local Ray cluster cannot start here: {type(exc).__name__}: {exc}")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = before


def tables(folder, experiment: str = "loo") -> dict[str, pl.DataFrame]:
    run_dir = next(p for p in (folder / ".persona-exp" / "runs" / experiment).iterdir())
    out = {}
    for f in sorted(run_dir.glob("*.parquet")):
        t = pl.read_parquet(f).drop("latency_ms", strict=False)  # wall time differs between any two runs
        out[f.stem] = t.sort(t.columns[0]) if t.height else t
    return out


def test_the_ray_executor_gives_the_local_executors_tables(ray_cluster, tmp_path, monkeypatch, capsys):
    spec = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "loo.yaml")
    overrides = ["experiment.n_personas=4", "experiment.n_questions=6", "experiment.attributes=[age, sex, religion]"]
    outcomes = {}
    for executor in ("local", "ray"):
        (tmp_path / executor).mkdir()
        monkeypatch.chdir(tmp_path / executor)
        outcomes[executor] = run_spec(spec, overrides, progress=False, executor=executor)
    local, remote = tables(tmp_path / "local"), tables(tmp_path / "ray")
    assert outcomes["ray"].counts.calls == outcomes["local"].counts.calls > 100
    assert outcomes["ray"].counts.as_dict() == outcomes["local"].counts.as_dict()
    assert set(local) == set(remote) and "calls" in local
    for name in local:
        assert local[name].equals(remote[name]), name
    assert (outcomes["local"].manifest["executor"], outcomes["ray"].manifest["executor"]) == ("local", "ray")  # which executor sent the calls
    capsys.readouterr()
    assert main(["show", "latest"]) == 0  # in the ray run's folder
    assert "calls sent by the ray executor" in capsys.readouterr().out


def test_staged_calls_are_sent_by_the_actors_too(ray_cluster, tmp_path, monkeypatch):
    """WikiPersonas plans on answers (questions, candidates, tournament rounds):
    those staged calls go through the actors like the plan's, and the tables
    are the local executor's."""
    from persona_exp.execute import runner

    spec = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "wikipersona.yaml")
    overrides = ["population.size=6", "experiment.n_personal=3", "experiment.n_divergent=3", "experiment.n_candidates=4"]
    outcomes = {}
    for executor in ("local", "ray"):
        (tmp_path / executor).mkdir()
        monkeypatch.chdir(tmp_path / executor)
        outcomes[executor] = run_spec(spec, overrides, progress=False, executor=executor)
        if executor == "local":  # from here on, record where each run on the real cache sends its calls from
            runs = []
            real_run = runner.Runner.run
            monkeypatch.setattr(runner.Runner, "run", lambda self, plan, known=None: runs.append((self.cache.in_memory, self.executor, len(plan)))
                                or real_run(self, plan, known))
    sent = [(executor, n) for in_memory, executor, n in runs if not in_memory]  # in memory: the estimate's free simulated pilot
    assert len(sent) > 3 and all(isinstance(executor, RayExecutor) for executor, _ in sent), sent  # the staged steps and the final one
    assert outcomes["ray"].counts.as_dict() == outcomes["local"].counts.as_dict() and outcomes["ray"].counts.ran > 100
    local, remote = (tables(tmp_path / name, "wikipersona") for name in ("local", "ray"))
    assert set(local) == set(remote) and "calls" in local
    for name in local:
        assert local[name].equals(remote[name]), name


def judge_plan(cfg: ModelConfig, n: int) -> Plan:
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
    return plan


def test_a_provider_run_on_ray_sends_each_call_once_and_caches_it_in_the_driver(ray_cluster, tmp_path, openai_server):
    state, url = openai_server
    state.reply = lambda body: "A" if int(body["messages"][-1]["content"].split()[1].rstrip(":")) % 2 else "B"
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=8)
    plan = judge_plan(cfg, 300)
    executor = RayExecutor()
    try:
        with CallCache(tmp_path / "c.sqlite") as cache:
            results, counts = Runner({"judge": cfg}, cache, progress=False, executor=executor).run(plan)
            stored = cache.stats()["calls"]
    finally:
        executor.close()
    assert counts.ran == 300 and counts.failed == 0 and stored == 300 and len(state.requests) == 300
    assert all(r.value == ("A" if int(plan.calls[k].messages[0]["content"].split()[1].rstrip(":")) % 2 else "B") for k, r in results.items())
    assert all(r.attempts == 1 and r.latency_ms > 0 for r in results.values())


def test_answers_stream_back_a_slow_call_holds_back_none_of_the_others(ray_cluster, tmp_path, openai_server):
    state, url = openai_server
    answered_slow = []

    def reply(body):
        if body["messages"][-1]["content"].startswith("Question 0:"):
            time.sleep(4.0)
            answered_slow.append(time.time())  # the wall clock, as the cache's created_at
        return "A"

    state.reply = reply
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=32)
    plan = judge_plan(cfg, 40)  # one batch: every call goes to one actor in one Ray task
    executor = RayExecutor()
    try:
        with CallCache(tmp_path / "c.sqlite") as cache:
            _, counts = Runner({"judge": cfg}, cache, progress=False, executor=executor).run(plan)
    finally:
        executor.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        stored = dict(db.execute("SELECT key, created_at FROM calls"))
    slow = next(k for k, c in plan.calls.items() if c.messages[-1]["content"].startswith("Question 0:"))
    assert counts.ran == 40 and counts.failed == 0 and len(stored) == 40
    # The others were cached while the server was still answering the slow one.
    assert max(t for k, t in stored.items() if k != slow) < answered_slow[0] < stored[slow]


DRIVER = textwrap.dedent("""
    import sys
    from persona_exp.execute import CallCache, Runner
    from persona_exp.execute.ray_executor import RayExecutor
    from persona_exp.plan import Plan
    from persona_exp.spec import ModelConfig

    address, url, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=4)
    plan = Plan()
    for i in range(n):
        plan.add("judge", "judge", cfg.model, [{"role": "user", "content": f"Question {i}: A or B?"}], cfg.sampling(), parser="choice")
    Runner({"judge": cfg}, CallCache(path), progress=False, executor=RayExecutor(address)).run(plan)
""")


def test_a_driver_killed_with_9_loses_no_finished_call(ray_cluster, tmp_path, openai_server):
    state, url = openai_server
    state.delay = 0.02
    path, n = tmp_path / "c.sqlite", 400
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, ray_cluster, url, str(path), str(n)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done = 0
    while done < 60 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
        if path.exists():
            with sqlite3.connect(path, timeout=30) as db:
                done = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'calls'").fetchone()[0] and \
                    db.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    with sqlite3.connect(path) as db:
        finished = {k for (k,) in db.execute("SELECT key FROM calls")}
    assert 60 <= len(finished) < n
    time.sleep(1.0)  # what the dead driver's actors had in flight reaches the server before the rerun starts
    sent_before = len(state.requests)
    cfg = ModelConfig(model="openai/m", api_base=url, concurrency=4)
    plan = judge_plan(cfg, n)
    executor = RayExecutor()
    try:
        with CallCache(path) as cache:
            results, counts = Runner({"judge": cfg}, cache, progress=False, executor=executor).run(plan)
    finally:
        executor.close()
    resent = {r["body"]["messages"][-1]["content"] for r in state.requests[sent_before:]}
    finished_prompts = {plan.calls[k].messages[-1]["content"] for k in finished}
    assert not resent & finished_prompts  # no finished call was sent again
    assert counts.failed == 0 and counts.cached >= len(finished) and counts.calls == n
    assert len(state.requests) - sent_before == counts.ran  # and each unfinished one once


def test_a_budget_holds_on_ray_where_hundreds_of_calls_are_in_flight(ray_cluster, openai_server):
    """--max-cost with the actors' batches in flight: calls wait for those in
    flight to say what they cost, so the spending stops where one call at a
    time would stop it (see the same run locally in test_budget_guards)."""
    from tests.execute.test_budget_guards import in_flight_run

    state, url = openai_server
    executor = RayExecutor()
    try:
        budget, sent = in_flight_run(url, state, executor=executor)
    finally:
        executor.close()
    assert sent == 6 and budget.reached


def test_executor_names_are_checked_and_a_missing_ray_says_how_to_install_it(monkeypatch, capsys):
    assert parse_executor("ray=auto") == ("ray", "auto") and parse_executor(None) == ("local", None)
    for bad in ("rayy", "ray=", "local=x"):
        with pytest.raises(InvalidArgumentError, match="give local, ray"):
            parse_executor(bad)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["run", "experiments/loo.yaml", "--executor", "ray"]) == 2
    assert "pip install 'persona-exp[ray]'" in capsys.readouterr().err


def test_each_actor_gets_its_share_of_every_deployments_rate_limits():
    """Every actor runs its own Router: each deployment's rpm/tpm is divided
    among the actors like the role's, so the cluster keeps each server's limits."""
    from persona_exp.execute.ray_executor import _share

    cfg = ModelConfig(model="openai/m", cache_as="m-pool", concurrency=10, rpm=90, tpm=None,
                      deployments=[{"name": "a", "api_base": "http://a/v1", "rpm": 60, "tpm": 10_001},
                                   {"name": "b", "api_base": "http://b/v1", "rpm": 1}, {"name": "c", "api_base": "http://c/v1"}])
    one = _share(cfg, 4)
    assert (one.concurrency, one.rpm, one.tpm) == (3, 23, None)
    assert [(d.name, d.rpm, d.tpm) for d in one.deployments] == [("a", 15, 2501), ("b", 1, None), ("c", None, None)]
    assert [d.api_base for d in one.deployments] == [d.api_base for d in cfg.deployments]  # only the limits change
    assert [(d.rpm, d.tpm) for d in cfg.deployments] == [(60, 10_001), (1, None), (None, None)]  # the role's own settings are untouched


def test_an_address_nothing_answers_at_fails_at_once_before_the_plan_is_built(monkeypatch, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'persona-exp[ray]')")
    import persona_exp.pipeline as pipeline

    built = []
    monkeypatch.setattr(pipeline, "prepare", lambda *a, **k: built.append(a) or pytest.fail("the plan was built before the executor was checked"))
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        assert main(["run", "experiments/loo.yaml", "--executor", f"ray=127.0.0.1:{port}"]) == 2
        took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert f"--executor ray=127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}" in err and "Traceback" not in err
    assert took < 15 and not built
    assert (RayExecutor(None).label, RayExecutor("auto").label) == ("ray", "ray=auto")  # what the run manifest records as its executor
