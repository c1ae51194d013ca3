"""The embedded default population: real 2018 PUMS records raked to national control totals.

Checked here: the raking (against a plain numpy IPF written below), the shipped
margins against the published tables, the marginals of a 20,000-persona default
population, its joint structure against the census files (Cramér's V computed by
scipy, within 0.05), that no persona is of a kind the microdata does not hold, and
that the shipped file decodes exactly like the Bureau's files and rebuilds byte for
byte. Tests that read the Bureau's files skip when ../shared/data is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats.contingency import association

from persona_exp import stats
from persona_exp.errors import CategoryError, DataError, InvalidArgumentError, LengthMismatchError
from persona_exp.population import PopulationSpec, build_population
from persona_exp.population.attributes import EDUCATION_LEVELS, PERSON_VARIABLES
from persona_exp.population.build import source_frame
from persona_exp.population.profile import (
    DEFAULT_FILE,
    EXTRA_VARIABLES,
    JOINT_PAIRS,
    calibration_report,
    census_profile,
    controls,
    cramers_v,
    default_about,
    default_records,
    joint_structure,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HOUSEHOLD = ("household_language", "household_type", "family_presence_and_age")
FOREIGN = ("U.S. citizen by naturalization", "Not a U.S. citizen")
S0101_TOTAL = 325_719_178


@pytest.fixture(scope="module")
def shared() -> Path:
    from persona_exp.population.default_build import SEED_FILES

    missing = [f for f in SEED_FILES if not (DATA / f).is_file()]
    if missing:
        pytest.skip(f"the twelve ACS 2018 PUMS person files are not all in {DATA} (missing {', '.join(missing)})")
    return DATA


@pytest.fixture(scope="module")
def census(shared) -> pl.DataFrame:
    """The seed states as the PUMS path reads the Bureau's files (Bureau weights)."""
    from persona_exp.population.default_build import census_frame

    return census_frame(shared)


@pytest.fixture(scope="module")
def personas() -> pl.DataFrame:
    return build_population(PopulationSpec(size=20_000), seed=0).frame


# --------------------------------------------------------------------------- raking


def numpy_ipf(w0: np.ndarray, margins: list[tuple[np.ndarray, np.ndarray]], sweeps: int) -> np.ndarray:
    """Textbook raking, written independently of the Rust core: scale to each margin in turn."""
    w = w0.astype(float).copy()
    for _ in range(sweeps):
        for cats, target in margins:
            current = np.bincount(cats, weights=w, minlength=len(target))
            w *= np.divide(target, current, out=np.ones_like(target, dtype=float), where=current > 0)[cats]
    return w


def test_rake_matches_a_plain_numpy_ipf_and_meets_every_margin():
    rng = np.random.default_rng(5)
    n = 5_000
    w0 = rng.uniform(0.5, 3.0, n)
    a, b, c = rng.integers(0, 4, n), rng.integers(0, 6, n), (rng.integers(0, 3, n) + rng.integers(0, 2, n))  # c: 0..3, uneven
    margins = [(a, np.array([100.0, 250.0, 400.0, 250.0])), (b, np.array([50.0, 150.0, 200.0, 300.0, 200.0, 100.0])),
               (c, np.array([300.0, 200.0, 350.0, 150.0]))]
    raked = stats.rake(w0, margins, tolerance=1e-12, max_iterations=500)
    assert raked.converged and raked.max_rel_error <= 1e-12 and raked.scales == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(raked.weights, numpy_ipf(w0, margins, raked.iterations), rtol=1e-12)
    for cats, target in margins:
        np.testing.assert_allclose(np.bincount(cats, weights=raked.weights), target, rtol=1e-11)


def test_shipped_weights_are_the_raking_of_the_bureau_weights_to_the_published_tables():
    """Offline: the shipped Bureau weights raked again (Rust and numpy) give the shipped calibrated ones."""
    records = default_records()
    margins = [(c.categories(records), c.targets) for c in controls()]
    w0 = records["PWGTP_2018"].to_numpy().astype(float)
    raked = stats.rake(w0, margins, tolerance=1e-9, max_iterations=1000)
    assert raked.converged and raked.iterations == default_about()["raking"]["iterations"]
    np.testing.assert_allclose(raked.weights, records["PWGTP"].to_numpy(), rtol=1e-6)  # float32 in the file
    np.testing.assert_allclose(numpy_ipf(w0, margins, raked.iterations), raked.weights, rtol=1e-9)


def test_rake_reports_disagreeing_totals_and_refuses_impossible_margins():
    w0 = np.ones(4)
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    scaled = stats.rake(w0, [(rows, [30.0, 70.0]), (cols, [80.0, 120.0])], tolerance=1e-12)
    assert scaled.scales == (1.0, 0.5) and scaled.weights.sum() == pytest.approx(100.0)
    with pytest.raises(DataError, match="margin 1 .*category 2"):
        stats.rake(w0, [(rows, [30.0, 70.0]), (np.array([0, 1, 0, 1]), [40.0, 50.0, 10.0])])
    with pytest.raises(CategoryError, match="row 3"):
        stats.rake(w0, [(np.array([0, 1, 0, 5]), [1.0, 1.0])])
    with pytest.raises(LengthMismatchError):
        stats.rake(w0, [(np.array([0, 1]), [1.0, 1.0])])
    with pytest.raises(CategoryError, match="null"):
        stats.rake(w0, [(pl.Series([0, 1, None, 1]), [1.0, 1.0])])
    with pytest.raises(InvalidArgumentError, match="tolerance"):
        stats.rake(w0, [(rows, [30.0, 70.0])], tolerance="tight")
    with pytest.raises(InvalidArgumentError, match="tolerance"):
        stats.rake(w0, [(rows, [30.0, 70.0])], tolerance=-1.0)
    slow = stats.rake([1.0, 2.0, 3.0, 4.0], [(rows, [40.0, 60.0]), (cols, [50.0, 50.0])], tolerance=1e-14, max_iterations=1)
    assert not slow.converged and slow.iterations == 1 and slow.max_rel_error > 1e-14


# --------------------------------------------------------------------------- margins


def _band(age: pl.Expr, bands: list) -> pl.Expr:
    out = pl.lit(None, dtype=pl.Int64)
    for i, (lo, hi) in reversed(list(enumerate(bands))):
        out = pl.when((age >= lo) if hi is None else age.is_between(lo, hi)).then(pl.lit(i, dtype=pl.Int64)).otherwise(out)
    return out


def attribute_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Each control table's cell of each row, computed here from the decoded
    attributes (not from the raw codes the calibration used); the language
    table without its Spanish / other split, which no attribute holds."""
    p = census_profile()
    sex = pl.when(pl.col("sex") == "Male").then(0).otherwise(1)
    age = pl.col("age")
    levels = p["education"]["levels"]
    level = pl.col("education").replace_strict(EDUCATION_LEVELS, default=None).replace_strict(
        {v: i for i, v in enumerate(levels)}, default=None, return_dtype=pl.Int64)
    status = pl.col("employment_status").replace_strict(
        {"Employed": 0, "In the armed forces": 0, "Unemployed": 1, "Not in labor force": 2}, default=None, return_dtype=pl.Int64)
    citizen = pl.col("citizenship").replace_strict(dict(zip(FOREIGN, (1, 2))), default=0, return_dtype=pl.Int64)
    english = pl.col("ability_to_speak_english").replace_strict(
        {"Speaks only English": 0, "Very well": 1, "Well": 2, "Not well": 3, "Not at all": 4}, default=None, return_dtype=pl.Int64)
    n_emp = len(p["employment"]["bands"])
    cells = {
        "age_sex": sex * 18 + _band(age, p["age_sex"]["bands"]),
        "race": pl.col("race").replace_strict({r: i for i, r in enumerate(p["race"]["counts"])}, default=None, return_dtype=pl.Int64),
        "education": pl.when(age < 18).then(0).otherwise(1 + (sex * 5 + _band(age, p["education"]["bands"])) * len(levels) + level),
        "employment": pl.when(age < 16).then(0).otherwise(1 + (sex * n_emp + _band(age, p["employment"]["bands"])) * 3 + status),
        "nativity": (sex * 2 + _band(age, p["citizenship"]["bands"])) * 3 + citizen,
        "english": pl.when(age < 5).then(0).otherwise(1 + _band(age, p["language"]["bands"]) * 5 + english),
    }
    return frame.select(**{k: v.fill_null(-1) for k, v in cells.items()})


def published(name: str) -> np.ndarray:
    """The control totals of a table, the language table by English ability only."""
    c = next(c for c in controls() if c.name == ("language" if name == "english" else name))
    if name != "english":
        return c.targets
    per_band = c.targets[1:].reshape(3, 9)  # only English, Spanish x 4 abilities, other x 4 abilities
    merged = np.column_stack([per_band[:, 0], per_band[:, 1:5] + per_band[:, 5:9]])
    return np.concatenate([[c.targets[0]], merged.ravel()])


def tvd(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def test_shipped_margins_meet_the_control_totals():
    report = calibration_report()
    assert [m["table"] for m in report["margins"]] == ["S0101", "B03002", "B15001", "B23001", "B05003", "B16004"]
    for m in report["margins"]:
        assert m["tvd"] <= 1e-6 and m["max_rel_error"] <= 1e-6, m["name"]
        assert sum(r["target"] for r in m["rows"]) == pytest.approx(S0101_TOTAL), m["name"]
    # The same margins from the decoded attributes of the default frame, cell by cell.
    frame = source_frame(PopulationSpec())[0]
    cells = attribute_cells(frame)
    w = frame["weight"].to_numpy()
    for name in cells.columns:
        target = published(name)
        got = np.bincount(cells[name].to_numpy(), weights=w, minlength=len(target))
        assert (cells[name] >= 0).all() and tvd(got, target) <= 1e-6, name
    # the uncontrolled check is reported, with its published source
    region = report["checks"][0]
    assert region["table"] == "DP02" and 0 < region["tvd"] < 1 and len(region["rows"]) == 6


def test_a_20000_persona_default_has_the_published_marginals(personas):
    """Per control table, the marginal of its main variable (age band and sex, race,
    education level, employment status, nativity, English ability) within TVD 0.02
    of the published counts. The full cross-classified tables (up to 79 cells) are
    met by the weights themselves (test above); at 20,000 personas their sampling
    noise alone is about 0.02."""
    p = census_profile()
    cells = attribute_cells(personas)
    one_way = {
        "age_sex": (np.arange(36), 36),
        "race": (np.arange(8), 8),
        "education": (np.concatenate([[0], np.tile(np.arange(7), 10) + 1]), 8),
        "employment": (np.concatenate([[0], np.tile(np.arange(3), 2 * len(p["employment"]["bands"])) + 1]), 4),
        "nativity": (np.tile(np.arange(3), 4), 3),
        "english": (np.concatenate([[0], np.tile(np.arange(5), 3) + 1]), 6),
    }
    for name, (collapse, k) in one_way.items():
        target = np.bincount(collapse, weights=published(name), minlength=k)
        got = np.bincount(collapse[cells[name].to_numpy()], minlength=k).astype(float)
        assert tvd(got, target) <= 0.02, (name, tvd(got, target))


# --------------------------------------------------------------------------- joint structure


def _income_band(amount: pl.Expr) -> pl.Expr:
    return (pl.when(amount <= 0).then(0).when(amount < 10_000).then(1).when(amount < 25_000).then(2)
            .when(amount < 50_000).then(3).when(amount < 100_000).then(4).otherwise(5))


def tables(frame: pl.DataFrame, groups: dict[str, str], weight: str | None) -> dict[str, np.ndarray]:
    """The five pairs' contingency tables, built here from the attributes (income
    parsed from its text, occupation group from a map read off the census files)."""
    amount = pl.col("income").str.replace_all(r"[$,]", "").str.replace("Loss of ", "-").cast(pl.Int64, strict=False)
    amount = pl.when(pl.col("income") == "No income").then(0).otherwise(amount)
    level = pl.col("education").replace_strict(EDUCATION_LEVELS, default=None)
    working = pl.col("employment_status").is_in(["Employed", "In the armed forces"])
    pairs = {
        JOINT_PAIRS[0]: (level, pl.col("occupation_category").replace_strict(groups, default=None), (pl.col("age") >= 25) & working),
        JOINT_PAIRS[1]: (level, _income_band(amount), pl.col("age") >= 25),
        JOINT_PAIRS[2]: (pl.col("race"), pl.col("citizenship").is_in(FOREIGN), pl.lit(True)),
        JOINT_PAIRS[3]: (pl.col("race"), pl.col("ability_to_speak_english"), pl.col("age") >= 5),
        JOINT_PAIRS[4]: (pl.col("disability"), pl.col("employment_status"), pl.col("age") >= 16),
    }
    out = {}
    w = pl.col(weight) if weight else pl.lit(1.0)
    for name, (a, b, universe) in pairs.items():
        long = frame.filter(universe).select(a.cast(pl.String).alias("a"), b.cast(pl.String).alias("b"), w.alias("w")).drop_nulls()
        wide = long.group_by("a", "b").agg(pl.col("w").sum()).pivot(on="b", index="a", values="w").fill_null(0)
        out[name] = wide.drop("a").to_numpy()
    return out


def scipy_v(table: np.ndarray) -> float:
    """Cramér's V by scipy (which wants integer counts: weighted tables are in persons, rounded)."""
    return float(association(np.rint(table).astype(np.int64), method="cramer"))


def test_cramers_v_agrees_with_scipy():
    rng = np.random.default_rng(2)
    for shape in [(2, 2), (3, 5), (7, 26)]:
        table = rng.integers(1, 500, size=shape)
        assert cramers_v(table) == pytest.approx(association(table, method="cramer"), rel=1e-12)
    assert cramers_v(np.array([[5, 0], [0, 0]])) == 0.0  # one row and one column left


def test_joint_structure_of_a_20000_persona_default_is_that_of_the_census_files(census, personas):
    groups = dict(census.filter(pl.col("_occupation_raw").str.contains(r"^[A-Z]{3}-"))
                  .select("occupation_category", pl.col("_occupation_raw").str.slice(0, 3)).unique().iter_rows())
    real = {k: scipy_v(t) for k, t in tables(census, groups, "weight").items()}
    drawn = {k: scipy_v(t) for k, t in tables(personas, groups, None).items()}
    for pair in JOINT_PAIRS:
        assert real[pair] > 0.15, pair  # real structure, far from the independent draws of the old default
        assert abs(drawn[pair] - real[pair]) <= 0.05, (pair, real[pair], drawn[pair])
    # the package's own summary and the shipped build record say the same
    ours = joint_structure(personas)
    recorded = default_about()["census_joint_structure"]
    for pair in JOINT_PAIRS:
        assert ours[pair] == pytest.approx(drawn[pair], abs=2e-3), pair  # same tables, rounded to 4 places
        assert recorded[pair] == pytest.approx(real[pair], abs=2e-3), pair


def test_no_persona_is_of_a_kind_the_microdata_lacks(census, personas):
    kinds = {
        "language, nativity, race": ["race", "citizenship", "place_of_birth", "ability_to_speak_english"],
        "age, income, education": ["age", "income", "education"],
    }
    for what, columns in kinds.items():
        support = census.select(columns).unique()
        outside = personas.select(columns).unique().join(support, on=columns, how="anti")
        assert outside.height == 0, (what, outside.head(5).to_dicts())
        # the check can fail: most combinations of the values are not in the microdata
        product = 1
        for c in columns:
            product *= census[c].n_unique()
        assert support.height < product / 10, what
    # The old independent draws made 205 of 240 people who speak no English US-born; real records put most abroad.
    no_english = personas.filter(pl.col("ability_to_speak_english") == "Not at all")
    assert no_english.height > 50
    assert no_english.filter(pl.col("citizenship") == "Born in the United States").height < no_english.height / 4


# --------------------------------------------------------------------------- one decoder, one vocabulary


def test_default_records_are_the_bureau_records_decoded_the_same_way(shared, census):
    from persona_exp.population.default_build import read_seed

    raw = read_seed(shared)
    shipped = default_records()
    columns = [*PERSON_VARIABLES, *EXTRA_VARIABLES]
    assert shipped.select(columns).equals(raw.select(columns))
    assert shipped["PWGTP_2018"].equals(raw["PWGTP"])
    frame = source_frame(PopulationSpec())[0]
    same = [c for c in frame.columns if c not in ("weight", "state")]
    assert frame.select(same).equals(census.select(same))
    assert frame["state"].null_count() == frame.height  # the seed's states are not a national sample
    assert all(frame[c].null_count() == frame.height for c in HOUSEHOLD)  # no housing record: unknown, not made up


def test_a_rebuild_from_the_bureau_files_is_byte_identical(shared, tmp_path):
    from persona_exp.population import default_build

    about = default_build.build(shared, tmp_path)
    packaged = Path(default_build.PACKAGE_DATA)
    assert (tmp_path / DEFAULT_FILE).read_bytes() == (packaged / DEFAULT_FILE).read_bytes()
    assert about == json.loads((packaged / "default_persons.json").read_text(encoding="utf-8"))
    assert (packaged / DEFAULT_FILE).stat().st_size < 4_000_000  # a few MB of package data
    assert about["seed"]["records"] == 159_604 and len(about["seed"]["states"]) == 12


def test_build_names_missing_seed_files(tmp_path):
    from persona_exp.population.default_build import main

    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the population report


def test_population_command_shows_the_calibration(tmp_path, capsys):
    from persona_exp.cli import main

    loo = Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml"
    args = ["population", str(loo), "--set", f"output.dir={tmp_path / 'out'}", "--set", "population.size=300"]
    assert main(args + ["--json"]) == 0
    cal = json.loads(capsys.readouterr().out)["calibration"]
    assert [m["name"] for m in cal["margins"]] == [c.name for c in controls()]
    assert all(m["tvd"] <= 1e-6 for m in cal["margins"])
    assert [j["pair"] for j in cal["joint"]] == list(JOINT_PAIRS)
    assert all(j["census"] > 0.15 and j["calibrated"] > 0.15 and j["calibrated_filtered"] is not None for j in cal["joint"])
    assert cal["filters"] == ["age >= 18"]
    assert main(args + ["--detail"]) == 0
    out = capsys.readouterr().out
    assert "Calibration: calibrated default vs published control totals" in out
    for m in cal["margins"]:
        assert m["table"] in out and m["rows"][-1]["category"] in out  # --detail lists every category
    assert "Joint structure: Cramér's V of key pairs" in out and "race x foreign born" in out
    assert f"{cal['about']['raking']['iterations']} sweeps" in out


def test_population_command_shows_no_calibration_for_a_pums_file(tmp_path, capsys):
    from persona_exp.cli import main

    wyoming = DATA / "csv_pwy.zip"
    if not wyoming.is_file():
        pytest.skip(f"real census data csv_pwy.zip not found in {DATA}")
    loo = Path(__file__).resolve().parents[2] / "experiments" / "loo.yaml"
    args = ["population", str(loo), "--set", f"output.dir={tmp_path / 'out'}", "--set", "population.size=50",
            "--set", f"population.persons={wyoming}", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["calibration"] is None
