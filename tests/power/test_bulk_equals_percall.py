"""The bulk judge gives the per-call simulator's verdicts when fed the
per-call simulator's own noise draws, on a real leave-one-out plan."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from persona_exp.execute import sim as S
from persona_exp.execute.runner import run_in_memory
from persona_exp.pipeline import prepare
from persona_exp.power import bulk, loo

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml"


@pytest.mark.parametrize("judge", [
    ["models.judge.sim.effects.religion=3.0", "models.judge.sim.default_effect=0.7"],
    ["models.judge.temperature=0.8", "models.judge.sim.noise=1.5", "models.judge.sim.quality=0.5", "models.judge.sim.draw=3"],
])
def test_bulk_verdicts_equal_per_call(tmp_path, judge):
    ov = [f"output.dir={tmp_path}", "experiment.attributes=[religion,age,income,ideology]", "experiment.n_personas=4", "experiment.n_questions=5",
          "population.size=300", *judge]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(str(SPEC), ov, dry=True, progress=False, simulate=True)
    plan = prep.design.plan
    results, _ = run_in_memory(prep.spec.models, plan, known=prep.stager.results)
    pool = loo.build_pool(prep)
    cfg = prep.spec.models["judge"]
    sim = S.Simulator(cfg.sim.model_dump(), 0, cfg.temperature or 0.0)
    for column, judgments in (("judge_without_key", pool.without), ("judge_with_key", pool.with_)):
        noise, per_call = [], []
        for key in pool.items[column]:
            call = plan.calls[key]
            slots = {name: results[k].output() for name, k in call.inputs.items()}
            prompt = "\n\n".join(m["content"] for m in call.render({k: results[k].output() for k in call.inputs.values()}))
            persona = S.persona_attributes(S._blank(prompt, tuple(slots.values())))
            noise.append(sim._noise("judge", sorted(persona.items()), slots["response_a"].strip(), slots["response_b"].strip()))
            per_call.append(results[key].value == "A")
        got = bulk.verdicts(judgments, sim, np.array(noise))
        assert len(got) == len(per_call) == pool.items.height > 20
        assert got.tolist() == per_call
        # Not trivially equal: both answers win sometimes, and the signal alone would give other verdicts.
        assert 0 < sum(per_call) < len(per_call)
        assert (judgments.signal(sim) > 0).tolist() != per_call


def test_pool_answers_equal_the_runner(tmp_path):
    """The pool's generator answers (straight to the simulator) are the runner's, call for call."""
    ov = [f"output.dir={tmp_path}", "experiment.attributes=[religion,sex]", "experiment.n_personas=3", "experiment.n_questions=4", "population.size=200"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(str(SPEC), ov, dry=True, progress=False, simulate=True)
    plan = prep.design.plan
    runner, _ = run_in_memory(prep.spec.models, plan, known=prep.stager.results)
    direct = loo.generator_results(plan, prep.spec.models, "judge", prep.stager.results)
    generator = [k for k, c in plan.calls.items() if c.role != "judge"]
    assert set(direct) == set(generator) and len(generator) > 10
    assert all(direct[k].output() == runner[k].output() and direct[k].value == runner[k].value for k in generator)


def test_parallel_pool_equals_sequential(tmp_path):
    """The pool built by two processes, each a share of the attributes, holds the same judgments."""
    ov = [f"output.dir={tmp_path}", "experiment.attributes=[religion,sex,age]", "experiment.n_personas=3", "experiment.n_questions=4",
          "population.size=200", "models.judge.sim.effects.religion=2.5"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seq = loo.build_pool(prepare(str(SPEC), ov, dry=True, progress=False, simulate=True))
    par = loo.build_pool_parallel(str(SPEC), ov, 2)
    assert par.questions == seq.questions and set(par.grid) == set(seq.grid)

    def keyed(pool):
        sim = pool.simulator({})
        ids = zip(pool.items["attribute"], pool.items["persona_id"], pool.items["question_id"])
        return dict(zip(ids, zip(pool.without.signal(sim).tolist(), pool.with_.signal(sim).tolist())))

    a, b = keyed(seq), keyed(par)
    assert a.keys() == b.keys() and len(a) == 3 * 3 * 4
    assert all(np.allclose(a[k], b[k]) for k in a)
