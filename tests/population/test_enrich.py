"""Tests of the procedural persona enrichment (persona_exp.population.enrich).

Expected figures are written out here from the published sources (the BFI-2
correlation matrix, Gallup's and Pew's percentages), not read back from the
package's data files, so a transcription slip in those files fails a test.
Statistical checks use a fixed seed: they are deterministic, and the
thresholds (chi-square p > 0.001, correlations within 0.03 at n = 20,000, some
four standard errors) leave room for honest sampling error only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from persona_exp.errors import DataError, InvalidArgumentError
from persona_exp.population import (
    BIG_FIVE_COLUMNS,
    BIG_FIVE_DOMAINS,
    BIG_FIVE_LABELS,
    ENRICHED_COLUMNS,
    TOO_YOUNG_FOR_POLITICS,
    big_five_norms,
    big_five_scores,
    describe_job,
    enrich,
    enrichment_lists,
)
from persona_exp.population.enrich import _HASH_PERSON, BIG_FIVE_MIN_AGE, RELIGION_MIN_AGE, _words

SHARED_NORMS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bfi2_norms.json"
N = 20_000
P_MIN = 1e-3

# BFI-2 domain correlations of the Czech 15-26 sample, all participants
# (Hrebickova et al. 2020), in the BFI-2 order E, A, C, N, O.
CZECH_ALL_CORR_EACNO = np.array(
    [
        [1.00, 0.05, 0.18, -0.33, 0.30],
        [0.05, 1.00, 0.23, -0.17, 0.13],
        [0.18, 0.23, 1.00, -0.19, 0.04],
        [-0.33, -0.17, -0.19, 1.00, 0.00],
        [0.30, 0.13, 0.04, 0.00, 1.00],
    ]
)
EACNO = ("extraversion", "agreeableness", "conscientiousness", "neuroticism", "openness")


def _population(n: int, age, sex=None, prefix: str = "t", **extra) -> pl.DataFrame:
    columns = {"persona_id": [f"{prefix}{i}" for i in range(n)], "age": np.broadcast_to(np.asarray(age), (n,)).astype(np.int64)}
    if sex is not None:
        columns["sex"] = [sex] * n
    columns.update(extra)
    return pl.DataFrame(columns)


def _in_eacno(matrix: np.ndarray) -> np.ndarray:
    """Reorder a matrix from BIG_FIVE_DOMAINS order to E, A, C, N, O."""
    idx = [BIG_FIVE_DOMAINS.index(d) for d in EACNO]
    return matrix[np.ix_(idx, idx)]


def _normal_band_probs(shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """P(z in each label band) when z ~ N(shift, scale^2)."""
    cdf = stats.norm.cdf((np.array([-1.5, -0.5, 0.5, 1.5]) - shift) / scale)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _chisq_p(values: pl.Series, categories, probs) -> float:
    counts = np.array([(values == c).sum() for c in categories], dtype=float)
    assert counts.sum() == len(values), "a value outside the expected categories"
    probs = np.asarray(probs, dtype=float)
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a category with probability zero was drawn"
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    return stats.chisquare(counts[keep], expected).pvalue


# --------------------------------------------------------------------------- Big Five


def test_latent_correlations_match_the_published_bfi2_matrix():
    scores = big_five_scores(_population(N, 35), seed=7)  # adults, sex unknown -> Czech "all" norms
    sample = np.corrcoef(scores.select(EACNO).to_numpy(), rowvar=False)
    assert np.abs(sample - CZECH_ALL_CORR_EACNO).max() < 0.03


@pytest.mark.parametrize(
    ("age", "sex", "sample", "group"),
    [(40, "Male", "czech_15_26", "male"), (40, "Female", "czech_15_26", "female"), (15, None, "us_14_18", "all")],
)
def test_latent_scores_follow_the_norm_group(age, sex, sample, group):
    norm = big_five_norms()[sample][group]
    scores = big_five_scores(_population(N, age, sex), seed=11).select(BIG_FIVE_DOMAINS).to_numpy()
    assert np.abs(np.corrcoef(scores, rowvar=False) - norm.corr).max() < 0.03
    assert np.all(np.abs(scores.mean(axis=0) - norm.mean) < 4 * norm.sd / np.sqrt(N))
    assert np.all(np.abs(scores.std(axis=0) / norm.sd - 1) < 0.03)


def test_packaged_norms_match_the_published_figures():
    czech = big_five_norms()["czech_15_26"]["all"]
    assert np.allclose(_in_eacno(czech.corr), CZECH_ALL_CORR_EACNO)
    assert np.allclose(czech.mean, [3.62, 3.23, 3.30, 3.61, 2.97])  # O, C, E, A, N
    assert np.allclose(czech.sd, [0.64, 0.70, 0.69, 0.57, 0.77])
    if not SHARED_NORMS.is_file():
        pytest.skip(f"BFI-2 norms file not found at {SHARED_NORMS} (the ../shared/data folder is absent)")
    shared = json.loads(SHARED_NORMS.read_text())
    pairs = {
        ("czech_15_26", "all"): shared["czech_adult_Hrebickova2020"]["all"],
        ("czech_15_26", "male"): shared["czech_adult_Hrebickova2020"]["male"],
        ("czech_15_26", "female"): shared["czech_adult_Hrebickova2020"]["female"],
        ("us_14_18", "all"): shared["us_adolescent_Ober2021"]["all"],
        ("us_14_18", "male"): shared["us_adolescent_Ober2021"]["Male"],
        ("us_14_18", "female"): shared["us_adolescent_Ober2021"]["Female"],
    }
    letters = {"extraversion": "E", "agreeableness": "A", "conscientiousness": "C", "neuroticism": "N", "openness": "O"}
    for (sample, group), published in pairs.items():
        norm = big_five_norms()[sample][group]
        assert np.allclose(_in_eacno(norm.corr), published["corr"])
        assert np.allclose(norm.mean, [published["mean"][letters[d]] for d in BIG_FIVE_DOMAINS])
        assert np.allclose(norm.sd, [published["sd"][letters[d]] for d in BIG_FIVE_DOMAINS])


def test_label_frequencies_match_the_normal_band_probabilities():
    enriched = enrich(_population(N, 30), seed=3)
    expected = _normal_band_probs()
    assert np.allclose(expected, [0.0668, 0.2417, 0.3829, 0.2417, 0.0668], atol=1e-4)
    for column in BIG_FIVE_COLUMNS:
        assert _chisq_p(enriched[column], BIG_FIVE_LABELS, expected) > P_MIN, column


def test_sex_specific_norms_shift_the_labels_as_published():
    # women: drawn from the female norms, labelled against the combined norms
    enriched = enrich(_population(N, 30, "Female"), seed=5)
    female, everyone = big_five_norms()["czech_15_26"]["female"], big_five_norms()["czech_15_26"]["all"]
    for i, domain in enumerate(BIG_FIVE_DOMAINS):
        shift = (female.mean[i] - everyone.mean[i]) / everyone.sd[i]
        scale = female.sd[i] / everyone.sd[i]
        probs = _normal_band_probs(shift, scale)
        assert _chisq_p(enriched[f"big_five_{domain}"], BIG_FIVE_LABELS, probs) > P_MIN, domain
    # the published gap (N 3.13 vs 2.97 combined) gives women more high-neuroticism labels
    high = enriched["big_five_neuroticism"].is_in(["High", "Extremely High"]).mean()
    assert high > 0.31 + 0.02


def test_labels_are_the_cut_standardized_scores():
    frame = _population(3000, np.arange(3000) % 90, prefix="c")
    z = big_five_scores(frame, seed=9, standardized=True)
    enriched = enrich(frame, seed=9)
    young = (frame["age"] < BIG_FIVE_MIN_AGE).to_numpy()
    for domain in BIG_FIVE_DOMAINS:
        values = z[domain].to_numpy()
        assert np.isnan(values[young]).all() and not np.isnan(values[~young]).any()  # null under the cut-off
        expected = np.asarray(BIG_FIVE_LABELS)[np.searchsorted([-1.5, -0.5, 0.5, 1.5], values[~young], side="right")]
        assert enriched[f"big_five_{domain}"].filter(~young).to_list() == expected.tolist()
        assert set(enriched[f"big_five_{domain}"].filter(young)) == {"Not applicable"}


# --------------------------------------------------------------------------- determinism


def _mixed_population(n: int, prefix: str = "p") -> pl.DataFrame:
    rng = np.random.default_rng(123)
    return pl.DataFrame(
        {
            "persona_id": [f"{prefix}{i}" for i in range(n)],
            "age": rng.integers(0, 95, n),
            "sex": rng.choice(["Male", "Female"], n).tolist(),
            "employment_status": rng.choice(["Civilian employed, at work", "Unemployed", "Not in labor force"], n).tolist(),
            "occupation": rng.choice(["MGR-Sales Managers", "EDU-Librarians", None], n).tolist(),
            "income": pl.Series(rng.integers(0, 100_000, n)).set(pl.Series(rng.random(n) < 0.2), None),
        }
    )


def test_same_frame_and_seed_give_identical_output_and_other_seeds_differ():
    frame = _mixed_population(2000)
    first, second = enrich(frame, seed=42), enrich(frame, seed=42)
    assert first.equals(second)
    other = enrich(frame, seed=43)
    changed = sum((first[c] != other[c]).sum() for c in ENRICHED_COLUMNS)
    assert changed > 2000


def test_adding_or_reordering_personas_leaves_existing_ones_unchanged():
    base = _mixed_population(1000)
    newcomers = _mixed_population(700, prefix="new")
    alone = enrich(base, seed=8)
    grown = enrich(pl.concat([newcomers.head(300), base.reverse(), newcomers.tail(400)]), seed=8)
    joined = alone.join(grown, on="persona_id", suffix="_grown")
    assert joined.height == base.height
    for column in ENRICHED_COLUMNS:
        assert (joined[column] == joined[f"{column}_grown"]).all(), column


def test_words_are_numpys_philox_stream_keyed_by_the_persona_hash():
    ids = ["a", "persona-17", "ü-9"]
    words = _words(ids, 2024)
    for row, pid in zip(words, ids):
        key = int.from_bytes(hashlib.blake2b(f"2024:{pid}".encode(), digest_size=16, person=_HASH_PERSON).digest(), "little")
        assert np.array_equal(row, np.random.Philox(key=key).random_raw(16))


def test_output_keeps_rows_and_columns_and_adds_string_columns():
    frame = _mixed_population(50)
    enriched = enrich(frame, seed=1)
    assert enriched.columns == frame.columns + list(ENRICHED_COLUMNS)
    assert enriched.select(frame.columns).equals(frame)
    assert all(enriched.schema[c] == pl.String for c in ENRICHED_COLUMNS)
    assert enriched.select(ENRICHED_COLUMNS).null_count().sum_horizontal().item() == 0
    empty = enrich(frame.head(0), seed=1)
    assert empty.height == 0 and empty.columns == enriched.columns


# --------------------------------------------------------------------------- minors, jobs


def test_minors_are_too_young_for_politics_and_adults_never_are():
    enriched = enrich(_population(3600, np.arange(3600) % 36, prefix="m"), seed=4)
    minors = enriched.filter(pl.col("age") < 18)
    adults = enriched.filter(pl.col("age") >= 18)
    assert TOO_YOUNG_FOR_POLITICS == "Too young to have political views"
    for column in ("ideology", "political_views"):
        assert (minors[column] == TOO_YOUNG_FOR_POLITICS).all()
        assert not (adults[column] == TOO_YOUNG_FOR_POLITICS).any()
    assert set(minors.filter(pl.col("age") < RELIGION_MIN_AGE)["religion"]) == {"Not applicable"}
    assert minors.filter(pl.col("age") >= RELIGION_MIN_AGE)["religion"].is_in(RELIGIONS).all()
    assert set(minors.filter(pl.col("age") < 5)["detailed_job_description"]) == {"Too young to work"}
    assert set(minors.filter(pl.col("age").is_between(5, 15))["detailed_job_description"]) == {"Student"}


@pytest.mark.parametrize(
    ("age", "status", "occupation", "expected"),
    [
        (3, None, None, "Too young to work"),
        (10, "Unemployed", "Student", "Student"),
        (17, "Not in labor force", None, "Student"),
        (34, "Civilian employed, at work", "MGR-General And Operations Managers", "Works in management (General and Operations Managers)"),
        (34, "Civilian employed, with a job but not at work", "EDU-Librarians", "Has a job in education (Librarians) but is currently not at work"),
        (29, "Unemployed", "SAL-Cashiers", "Not working, looking for work; last worked in sales (Cashiers)"),
        (45, "Not in labor force", None, "Not working"),
        (73, "Not in labor force", "MGR-Sales Managers", "Retired, previously worked in management (Sales Managers)"),
        (40, "Not in labor force", "N/A (less than 16 years old/NILF who last worked more than 5 years ago or never worked)", "Not working"),
        (22, "Armed forces, at work", "MIL-Military Officer Special And Tactical Operations Leaders", "Serves in the armed forces (Military Officer Special and Tactical Operations Leaders)"),
        (50, None, None, "Not stated"),
    ],
)
def test_job_descriptions(age, status, occupation, expected):
    assert describe_job(age, status, occupation) == expected


# --------------------------------------------------------------------------- lists


def test_each_adult_list_has_at_least_40_distinct_entries():
    raw = json.loads(
        (Path(__file__).resolve().parents[2] / "persona_exp" / "population" / "data" / "enrichment_lists.json").read_text()
    )
    for name in ("defining_quirks", "mannerisms", "personal_time", "lifestyle"):
        entries = [(e["text"] if isinstance(e, dict) else e).strip() for e in raw[name]["adult"]]
        assert len(set(entries)) >= 40 and len(set(entries)) == len(entries), name
        assert enrichment_lists().choices(name, 50) == tuple(entries)


def test_list_attributes_draw_every_entry_uniformly():
    enriched = enrich(_population(N, 50), seed=12)
    lists = enrichment_lists()
    for name in lists.entries:
        entries = lists.choices(name, 50)
        assert _chisq_p(enriched[name], entries, np.full(len(entries), 1 / len(entries))) > P_MIN, name


# --------------------------------------------------------------------------- beliefs


def test_ideology_frequencies_match_gallups_2023_figures():
    # Gallup 2023: 25% liberal, 36% moderate, 36% conservative (3% no answer left out)
    enriched = enrich(_population(N, 40), seed=21)
    assert _chisq_p(enriched["ideology"], ["Liberal", "Moderate", "Conservative"], [25, 36, 36]) > P_MIN
    # the same data against a table shifted by two points is rejected: the test has power
    assert _chisq_p(enriched["ideology"], ["Liberal", "Moderate", "Conservative"], [27, 34, 36]) < P_MIN


@pytest.mark.parametrize(
    ("age", "percent"),
    [(20, [66, 34, 0]), (27, [64, 32, 4]), (45, [50, 47, 3]), (66, [43, 53, 4]), (85, [39, 58, 3])],
)
def test_political_views_match_pews_party_identification_by_age(age, percent):
    enriched = enrich(_population(N, age), seed=31)
    assert _chisq_p(enriched["political_views"], ["Democrat", "Republican", "Independent"], percent) > P_MIN


RELIGIONS = ["Protestant", "Catholic", "Other Christian", "Jewish", "Muslim", "Buddhist", "Hindu", "Other religion", "Atheist", "Agnostic", "Nothing in particular"]
ALL_ADULTS = [39, 19, 4, 2, 1, 1, 1, 2, 5, 6, 19]  # Pew 2023-24 RLS, all adults


def test_religion_of_young_adults_matches_the_landscape_study():
    # 18-29: 45% Christian, 44% unaffiliated, the rest other religions, each split as among all adults
    christian, unaffiliated, other = np.array(ALL_ADULTS[:3]), np.array(ALL_ADULTS[8:]), np.array(ALL_ADULTS[3:8])
    expected = np.concatenate([45 * christian / christian.sum(), 11 * other / other.sum(), 44 * unaffiliated / unaffiliated.sum()])
    enriched = enrich(_population(N, 24), seed=41)
    assert _chisq_p(enriched["religion"], RELIGIONS, expected) > P_MIN


@pytest.mark.parametrize("age", [15, 55])
def test_religion_outside_18_29_uses_the_all_adult_composition(age):
    enriched = enrich(_population(N, age), seed=43)
    assert _chisq_p(enriched["religion"], RELIGIONS, ALL_ADULTS) > P_MIN


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("missing", ["persona_id", "age"])
def test_a_missing_required_column_raises_a_data_error_naming_it(missing):
    frame = _population(5, 30).drop(missing)
    with pytest.raises(DataError, match=missing):
        enrich(frame, seed=0)
    with pytest.raises(DataError, match=missing):
        big_five_scores(frame, seed=0)


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        (pl.DataFrame({"persona_id": ["a", "b"], "age": [30, None]}), "age"),
        (pl.DataFrame({"persona_id": ["a", "b"], "age": ["30", "40"]}), "age"),
        (pl.DataFrame({"persona_id": ["a", "b"], "age": [30.5, 40.0]}), "age"),
        (pl.DataFrame({"persona_id": ["a", "b"], "age": [-1, 40]}), "age"),
        (pl.DataFrame({"persona_id": ["a", None], "age": [30, 40]}), "persona_id"),
        (pl.DataFrame({"persona_id": ["a", "a"], "age": [30, 40]}), "persona_id"),
        (pl.DataFrame({"persona_id": ["a"], "age": [30], "religion": ["x"]}), "religion"),
    ],
)
def test_unusable_columns_raise_a_data_error_naming_the_column(frame, column):
    with pytest.raises(DataError, match=column):
        enrich(frame, seed=0)


def test_bad_seed_and_non_frame_inputs_are_rejected():
    with pytest.raises(InvalidArgumentError, match="seed"):
        enrich(_population(3, 30), seed="1")
    with pytest.raises(DataError, match="DataFrame"):
        enrich({"persona_id": ["a"], "age": [3]}, seed=1)
