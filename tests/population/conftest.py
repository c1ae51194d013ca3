"""Fixtures for the population tests.

Real census files are read from ``../shared/data`` next to the checkout and
the tests that need them are skipped, with the reason, when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _need(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real census data {name} not found in {DATA} (the ../shared/data folder next to the checkout)")
    return path


@pytest.fixture(scope="session")
def wyoming_persons() -> Path:
    return _need("csv_pwy.zip")


@pytest.fixture(scope="session")
def dictionary_2018() -> Path:
    return _need("PUMS_Data_Dictionary_2018.csv")


@pytest.fixture(scope="session", autouse=True)
def _pums_cache(tmp_path_factory):
    """Zips are extracted into a temporary cache, never into the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def default_population():
    from persona_exp.population import PopulationSpec, build_population

    return build_population(PopulationSpec(), seed=0)
