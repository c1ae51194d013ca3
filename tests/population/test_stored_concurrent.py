"""Two runs that build the same population at once both store it safely."""

from __future__ import annotations

import multiprocessing as mp

from persona_exp.population import PopulationSpec, build_population
from persona_exp.population.stored import load_population, save_population


def _save_many(path: str, n: int) -> None:
    pop = build_population(PopulationSpec(source="census", size=60), seed=5)
    for _ in range(n):
        save_population(pop, path)


def test_concurrent_saves_of_one_population_never_collide(tmp_path):
    path = tmp_path / "populations" / "p.parquet"
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_save_many, args=(str(path), 25)) for _ in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0, 0]
    pop = load_population(path)
    assert pop.frame.height == 60
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.json", "p.parquet"]  # no temporary file left behind
