"""Procedural enrichment of persona populations (PERSONA, section 3.1 and appendix A).

The census gives a persona its demographics; the paper then fills in the
attributes the census does not have by procedure, before any language model is
involved. :func:`enrich` adds those columns to a frame of census-derived
personas:

* ``big_five_openness`` ... ``big_five_neuroticism``: one of the paper's labels
  "Extremely Low", "Low", "Average", "High", "Extremely High" (appendix C),
  cut from correlated normal domain scores built on published BFI-2 norms.
* ``defining_quirks``, ``mannerisms``, ``personal_time``, ``lifestyle``: one
  entry each from hand-written lists (``data/enrichment_lists.json``), one
  list per age band (0-2, 3-4, 5-12, 13-17, 18 and over), so a toddler never
  "asks 'Does that make sense?' after every explanation"; from 80 on, entries
  of high physical exertion (tagged in the file) are left out.
* ``ideology``, ``political_views``, ``religion``: drawn from published survey
  tables by age band (``data/belief_tables.json``); minors get "Too young to
  have political views" for the first two, as in appendix C, and children
  under 13 get "Not applicable" for religion (``RELIGION_MIN_AGE``).
* ``detailed_job_description``: a short sentence built from age, employment
  status and occupation, e.g. "Retired, previously worked in management
  (Sales Managers)".

Randomness. A persona's draws depend only on ``(seed, persona_id)`` and its own
attributes, never on the other rows, so adding personas to a population leaves
the enrichment of the existing ones unchanged. Each persona gets a 128-bit key
from BLAKE2b of ``f"{seed}:{persona_id}"``; numpy's counter-based Philox bit
generator keyed with it yields a fixed block of 64-bit words, one slot per
attribute (see ``_SLOT_*``). The raw words are used rather than
``Generator`` methods because numpy guarantees the bit streams, not the
distribution algorithms, across versions; uniforms and normals are derived here
(53-bit uniforms, Box-Muller).

Big Five. Domain scores on the BFI-2's 1-5 metric are drawn from a multivariate
normal with the published means, SDs and correlation matrix (via its Cholesky
factor), by sex when the persona's sex is known, and labelled by their z-score
against the sample's combined-sex norms, so group differences in the norms
(e.g. higher mean neuroticism among women) carry through to the labels. The
norms come from two samples, neither of them US adults: US adolescents aged
14-18 (used for personas under 18) and Czech 15-26 year olds (used for adults).
They stand in for US adult norms, which we do not have; see
``data/README.md``. Children under 10 (``BIG_FIVE_MIN_AGE``), younger than
any self-report Big Five data, get "Not applicable" for every domain.

Every age cut-off is documented, with its reason or source, in
``data/README.md``; adults 18-79 draw exactly as before the cut-offs existed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from persona_exp.errors import DataError, InvalidArgumentError

__all__ = [
    "ADULT_AGE",
    "BIG_FIVE_COLUMNS",
    "BIG_FIVE_CUTS",
    "BIG_FIVE_DOMAINS",
    "BIG_FIVE_LABELS",
    "BIG_FIVE_MIN_AGE",
    "BeliefTable",
    "BigFiveNorm",
    "CuratedLists",
    "ENRICHED_COLUMNS",
    "LIST_ATTRIBUTES",
    "RELIGION_MIN_AGE",
    "TOO_YOUNG_FOR_POLITICS",
    "belief_tables",
    "big_five_norms",
    "big_five_scores",
    "describe_job",
    "enrich",
    "enrichment_lists",
]

# --------------------------------------------------------------------------- constants

ADULT_AGE = 18
TOO_YOUNG_FOR_POLITICS = "Too young to have political views"  # the paper's wording (appendix C)
# attributes.NOT_APPLICABLE; that module imports this one, so it is spelled out here (a test checks they agree)
_NOT_APPLICABLE = "Not applicable"
# Self-reported Big Five data start at age 10 (Soto et al. 2008, 2011: BFI self-reports of 10-20 and
# 10-65 year olds); younger children get no levels rather than an adolescent profile.
BIG_FIVE_MIN_AGE = 10
# Religion is surveyed as one's own from 13 (Pew's 2020 survey of teens aged 13-17 and their
# parents); a younger child's religion is the household's, which the population does not record.
RELIGION_MIN_AGE = 13

# Output order; the norms file stores its matrices in the BFI-2 order E, A, C, N, O.
BIG_FIVE_DOMAINS: tuple[str, ...] = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
BIG_FIVE_COLUMNS: tuple[str, ...] = tuple(f"big_five_{d}" for d in BIG_FIVE_DOMAINS)
BIG_FIVE_LABELS: tuple[str, ...] = ("Extremely Low", "Low", "Average", "High", "Extremely High")
# Cut points on the z-score: one-SD-wide bands centred on the mean, the T-score
# bands 35 / 45 / 55 / 65 that personality-inventory profiles conventionally
# read as very low / low / average / high / very high. "Average" then holds the
# middle 38.3%, "Low" and "High" 24.2% each and each "Extremely" label the outer
# 6.7%, so the extreme labels stay rare but a population of a few thousand
# still shows them. A z-score equal to a cut point falls in the upper band.
BIG_FIVE_CUTS: tuple[float, ...] = (-1.5, -0.5, 0.5, 1.5)

LIST_ATTRIBUTES: tuple[str, ...] = ("defining_quirks", "mannerisms", "personal_time", "lifestyle")
_BELIEF_ATTRIBUTES: tuple[str, ...] = ("ideology", "political_views", "religion")
ENRICHED_COLUMNS: tuple[str, ...] = (
    *BIG_FIVE_COLUMNS,
    *LIST_ATTRIBUTES,
    *_BELIEF_ATTRIBUTES,
    "detailed_job_description",
)

MIN_LIST_ENTRIES = 40  # the adult lists
MIN_BAND_ENTRIES = 20  # each child band's list, and what an age may draw from after the activity filter
_ADULT_BAND = "adult"

# Random words per persona and what each one drives. New attributes take the
# reserved slots, so existing ones never shift.
_N_WORDS = 16
_SLOT_NORMALS = slice(0, 6)  # Box-Muller pairs -> 6 normals, the first 5 are the Big Five
_SLOT_LIST = {name: 6 + i for i, name in enumerate(LIST_ATTRIBUTES)}  # 6..9
_SLOT_BELIEF = {name: 10 + i for i, name in enumerate(_BELIEF_ATTRIBUTES)}  # 10..12
_HASH_PERSON = b"persona-enrich"  # BLAKE2b personalisation: keys differ from other uses of the same id

_DATA = "data"
_NORMS_FILE = "big_five_norms.json"
_LISTS_FILE = "enrichment_lists.json"
_BELIEFS_FILE = "belief_tables.json"

# --------------------------------------------------------------------------- data files


def _read_json(name: str) -> Any:
    resource = resources.files("persona_exp.population").joinpath(_DATA).joinpath(name)
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # a broken install, not user input
        raise DataError(f"cannot read the packaged data file {_DATA}/{name}: {exc}") from exc


@dataclass(frozen=True)
class BigFiveNorm:
    """Means, SDs and correlations of the five BFI-2 domains, in ``BIG_FIVE_DOMAINS`` order."""

    mean: np.ndarray  # (5,)
    sd: np.ndarray  # (5,)
    corr: np.ndarray  # (5, 5)
    n: int


@lru_cache(maxsize=1)
def big_five_norms() -> dict[str, dict[str, BigFiveNorm]]:
    """The packaged BFI-2 norms: ``{"us_14_18" | "czech_15_26": {"all" | "male" | "female": norm}}``.

    Reordered from the file's E, A, C, N, O to ``BIG_FIVE_DOMAINS``; each
    correlation matrix is checked to be a valid (positive definite) one.
    """
    raw = _read_json(_NORMS_FILE)
    order = [raw["domains"].index(d) for d in BIG_FIVE_DOMAINS]
    out: dict[str, dict[str, BigFiveNorm]] = {}
    for sample, spec in raw["samples"].items():
        out[sample] = {}
        for group, g in spec["groups"].items():
            corr = np.asarray(g["corr"], dtype=np.float64)[np.ix_(order, order)]
            if not np.allclose(corr, corr.T) or np.linalg.eigvalsh(corr).min() <= 0:
                raise DataError(f"{_NORMS_FILE}: the {sample}/{group} correlation matrix is not positive definite")
            out[sample][group] = BigFiveNorm(
                mean=np.asarray(g["mean"], dtype=np.float64)[order],
                sd=np.asarray(g["sd"], dtype=np.float64)[order],
                corr=corr,
                n=int(g["n"]),
            )
    return out


@dataclass(frozen=True)
class CuratedLists:
    """The hand-written lists: per attribute, one list per age band; which entries an age may draw.

    ``bands`` are ``(name, first age)`` in ascending order from 0, each band
    running to the next one's first age; ``high`` holds the entries of high
    physical exertion, which personas older than ``high_activity_max_age``
    do not draw.
    """

    bands: tuple[tuple[str, int], ...]
    entries: Mapping[str, Mapping[str, tuple[str, ...]]]  # attribute -> band -> entries, in file order
    high: Mapping[str, frozenset[str]]  # attribute -> entries of high physical exertion
    high_activity_max_age: int

    def band(self, age: int) -> str:
        """The name of the band holding ``age``."""
        return [name for name, first in self.bands if first <= age][-1]

    def choices(self, name: str, age: int) -> tuple[str, ...]:
        """The entries of ``name`` a persona of this age draws from, in file order."""
        entries = self.entries[name][self.band(age)]
        if age > self.high_activity_max_age:
            entries = tuple(e for e in entries if e not in self.high[name])
        return entries


def _list_bands(raw: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    bands = raw.get("bands")
    if not isinstance(bands, list) or not bands:
        raise DataError(f"{_LISTS_FILE}: 'bands' must list the age bands, e.g. {{\"name\": \"teen\", \"min_age\": 13, \"max_age\": 17}}")
    out, expect = [], 0
    for i, band in enumerate(bands):
        if not isinstance(band, dict) or not band.get("name"):
            raise DataError(f"{_LISTS_FILE}: bands[{i}] must be an object with a name, min_age and max_age")
        lo, hi = band.get("min_age"), band.get("max_age")
        if lo != expect or (hi is not None and (not isinstance(hi, int) or hi < lo)) or (hi is None and i != len(bands) - 1):
            raise DataError(
                f"{_LISTS_FILE}: bands[{i}] ({band.get('name')!r}, ages {lo}-{hi}) must start at age {expect}; the bands "
                "must cover every age from 0 without gaps or overlaps, the last one with max_age null"
            )
        out.append((str(band["name"]), lo))
        expect = None if hi is None else hi + 1
    if expect is not None:
        raise DataError(f"{_LISTS_FILE}: the last band must have max_age null, so that every age has a band")
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or _ADULT_BAND not in names or dict(out)[_ADULT_BAND] != ADULT_AGE:
        raise DataError(f"{_LISTS_FILE}: band names must be distinct, and the band {_ADULT_BAND!r} must start at age {ADULT_AGE}")
    return tuple(out)


@lru_cache(maxsize=1)
def enrichment_lists() -> CuratedLists:
    """The curated lists, checked: every band of every attribute has a list of distinct,
    non-empty entries (at least 40 for adults, 20 for each child band), and every age
    keeps at least 20 to draw from once high-exertion entries are left out."""
    raw = _read_json(_LISTS_FILE)
    bands = _list_bands(raw)
    limit = raw.get("high_activity_max_age")
    if not isinstance(limit, int) or limit < ADULT_AGE:
        raise DataError(f"{_LISTS_FILE}: 'high_activity_max_age' must be an age of at least {ADULT_AGE}, got {limit!r}")
    entries: dict[str, dict[str, tuple[str, ...]]] = {}
    high: dict[str, frozenset[str]] = {}
    for name in LIST_ATTRIBUTES:
        per_band = raw.get(name)
        if not isinstance(per_band, dict) or set(per_band) != {b for b, _ in bands}:
            raise DataError(f"{_LISTS_FILE}: {name!r} must hold one list for each band: {', '.join(b for b, _ in bands)}")
        entries[name], tagged = {}, set()
        for band, items in per_band.items():
            texts = []
            for item in items:
                if isinstance(item, dict):
                    if set(item) - {"text", "activity"} or item.get("activity") not in (None, "high"):
                        raise DataError(f"{_LISTS_FILE}: {name}.{band}: an entry {item!r} may only have 'text' and 'activity': 'high'")
                    text = str(item.get("text", "")).strip()
                    if item.get("activity") == "high":
                        tagged.add(text)
                else:
                    text = str(item).strip()
                texts.append(text)
            least = MIN_LIST_ENTRIES if band == _ADULT_BAND else MIN_BAND_ENTRIES
            if any(not t for t in texts) or len(set(texts)) != len(texts) or len(texts) < least:
                raise DataError(
                    f"{_LISTS_FILE}: list {name}.{band} must hold at least {least} distinct, non-empty entries "
                    f"(it has {len(set(texts))})"
                )
            entries[name][band] = tuple(texts)
        high[name] = frozenset(tagged)
    lists = CuratedLists(bands, entries, high, limit)
    nexts = [first for _, first in bands[1:]] + [None]
    for name in LIST_ATTRIBUTES:
        for (band, first), following in zip(bands, nexts):
            if following is not None and following <= limit + 1:
                continue  # no age of this band is past the limit
            if len(lists.choices(name, max(first, limit + 1))) < MIN_BAND_ENTRIES:
                raise DataError(
                    f"{_LISTS_FILE}: list {name}.{band} keeps fewer than {MIN_BAND_ENTRIES} entries for personas over "
                    f"{limit} once the 'activity': 'high' entries are left out; write more low-exertion entries"
                )
    return lists


@dataclass(frozen=True)
class BeliefTable:
    """One attribute's categories and a probability row per age band (adults only)."""

    categories: tuple[str, ...]
    lower: np.ndarray  # (B,) first age of each band, ascending
    upper: np.ndarray  # (B,) last age of each band (inclusive)
    probs: np.ndarray  # (B, K), rows sum to 1
    default: np.ndarray | None  # (K,) for ages outside every band, or None
    source: str

    def probabilities(self, age: int) -> np.ndarray:
        """The probability row for one age (for tests and reports)."""
        for lo, hi, row in zip(self.lower, self.upper, self.probs):
            if lo <= age <= hi:
                return row
        if self.default is None:
            raise InvalidArgumentError(f"age {age} lies outside every band of this table")
        return self.default


def _percent_row(percent: Mapping[str, float], categories: Sequence[str], remainder: str | None, where: str) -> np.ndarray:
    row = np.zeros(len(categories))
    for cat, value in percent.items():
        if cat not in categories:
            raise DataError(f"{_BELIEFS_FILE}: {where} names unknown category {cat!r}")
        row[categories.index(cat)] = float(value)
    if remainder is not None:
        rest = 100.0 - row.sum()
        if rest < -1e-9:
            raise DataError(f"{_BELIEFS_FILE}: {where} adds up to more than 100%")
        row[categories.index(remainder)] += max(rest, 0.0)
    return row / row.sum()  # without a remainder, shares not reported (e.g. "no opinion") are left out


def _belief_table(name: str, spec: Mapping[str, Any]) -> BeliefTable:
    categories = tuple(spec["categories"])
    default = None
    within = {}
    if "all_adults_percent" in spec:
        default = _percent_row(spec["all_adults_percent"], categories, None, f"{name}.all_adults_percent")
        for group, members in spec.get("groups", {}).items():
            idx = [categories.index(m) for m in members]
            share = np.zeros(len(categories))
            share[idx] = default[idx] / default[idx].sum()
            within[group] = share
    lower, upper, rows = [], [], []
    for i, band in enumerate(spec["age_bands"]):
        where = f"{name}.age_bands[{i}]"
        if "group_percent" in band:
            # published only at the level of major groups: split each group in
            # its all-adult proportions, the unreported rest to one group
            shares = dict(band["group_percent"])
            rest = 100.0 - sum(shares.values())
            if band.get("remainder"):
                shares[band["remainder"]] = shares.get(band["remainder"], 0.0) + rest
            row = sum(float(v) * within[g] for g, v in shares.items())
            row = row / row.sum()
        else:
            row = _percent_row(band["percent"], categories, spec.get("remainder"), where)
        lower.append(int(band["min_age"]))
        upper.append(10**6 if band.get("max_age") is None else int(band["max_age"]))
        rows.append(row)
    order = np.argsort(lower)
    lo, hi = np.asarray(lower)[order], np.asarray(upper)[order]
    if np.any(lo[1:] <= hi[:-1]):
        raise DataError(f"{_BELIEFS_FILE}: the age bands of {name} overlap")
    return BeliefTable(categories, lo, hi, np.asarray(rows)[order], default, spec.get("source", ""))


@lru_cache(maxsize=1)
def belief_tables() -> dict[str, BeliefTable]:
    """The ideology, political-view and religion tables, with the published figures turned into probabilities."""
    raw = _read_json(_BELIEFS_FILE)
    return {name: _belief_table(name, raw[name]) for name in _BELIEF_ATTRIBUTES}


# --------------------------------------------------------------------------- input


def _check_frame(frame: Any) -> tuple[list[str], np.ndarray]:
    """persona_id as strings and age as int64, or a DataError naming the column."""
    if not isinstance(frame, pl.DataFrame):
        raise DataError(f"frame must be a polars DataFrame of personas, got {type(frame).__name__}")
    for column in ("persona_id", "age"):
        if column not in frame.columns:
            raise DataError(
                f"the persona frame has no {column!r} column; enrich needs 'persona_id' and 'age' "
                f"(columns present: {', '.join(frame.columns) or 'none'})"
            )
    taken = [c for c in ENRICHED_COLUMNS if c in frame.columns]
    if taken:
        raise DataError(f"the persona frame already has the column {taken[0]!r} that enrich would add; drop it first")

    ids = frame.get_column("persona_id")
    if ids.null_count():
        raise DataError(f"column 'persona_id' has {ids.null_count()} null value(s); every persona needs an id")
    ids = ids.cast(pl.String)
    if ids.n_unique() != ids.len():
        dup = ids.filter(ids.is_duplicated()).first()
        raise DataError(f"column 'persona_id' must be unique, but {dup!r} appears more than once")

    age = frame.get_column("age")
    if age.null_count():
        raise DataError(f"column 'age' has {age.null_count()} null value(s); every persona needs an age")
    if age.dtype.is_float():
        values = age.to_numpy()
        if not np.all(np.isfinite(values)) or np.any(values != np.floor(values)):
            raise DataError("column 'age' must hold whole years")
        age = age.cast(pl.Int64)
    elif not age.dtype.is_integer():
        raise DataError(f"column 'age' must be an integer column, got {age.dtype}")
    ages = age.cast(pl.Int64).to_numpy()
    if ages.size and ages.min() < 0:
        raise DataError(f"column 'age' holds a negative age ({int(ages.min())})")
    return ids.to_list(), ages


def _optional_strings(frame: pl.DataFrame, column: str) -> list[str | None]:
    if column not in frame.columns:
        return [None] * frame.height
    return frame.get_column(column).cast(pl.String).to_list()


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgumentError(f"seed must be an integer, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- randomness


def _words(ids: Sequence[str], seed: int) -> np.ndarray:
    """(n, 16) uint64 words per persona, a function of (seed, persona_id) alone."""
    out = np.empty((len(ids), _N_WORDS), dtype=np.uint64)
    # One generator re-keyed per persona: setting the state is about three
    # times cheaper than building Philox(key=...) and gives the same words.
    gen = np.random.Philox(0)
    zero = np.zeros(4, dtype=np.uint64)
    blake = hashlib.blake2b
    for i, pid in enumerate(ids):
        key = np.frombuffer(blake(f"{seed}:{pid}".encode(), digest_size=16, person=_HASH_PERSON).digest(), dtype="<u8")
        gen.state = {
            "bit_generator": "Philox",
            "state": {"counter": zero, "key": key.astype(np.uint64)},
            "buffer": zero,
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        out[i] = gen.random_raw(_N_WORDS)
    return out


def _uniform(words: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) from the top 53 bits of each word."""
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _normals(words: np.ndarray) -> np.ndarray:
    """Standard normals from pairs of words by Box-Muller (as many as words)."""
    u = _uniform(words)
    u1, u2 = 1.0 - u[:, 0::2], u[:, 1::2]  # u1 in (0, 1]: the logarithm stays finite
    r = np.sqrt(-2.0 * np.log(u1))
    theta = 2.0 * math.pi * u2
    z = np.empty_like(u)
    z[:, 0::2] = r * np.cos(theta)
    z[:, 1::2] = r * np.sin(theta)
    return z


def _pick(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: row i picks a category of probs[i] with its uniform u[i]."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0  # no rounding gap at the top
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


# --------------------------------------------------------------------------- Big Five


def _sex_group(sex: str | None) -> str:
    s = (sex or "").strip().lower()
    return {"male": "male", "m": "male", "female": "female", "f": "female"}.get(s, "all")


def _big_five(ids: list[str], ages: np.ndarray, sexes: list[str | None], words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent scores (1-5 metric) and their z-scores against the sample's combined norms."""
    norms = big_five_norms()
    z = _normals(words[:, _SLOT_NORMALS])[:, :5]
    scores = np.empty_like(z)
    zref = np.empty_like(z)
    sample = np.where(ages < ADULT_AGE, "us_14_18", "czech_15_26")
    group = np.array([_sex_group(s) for s in sexes], dtype=object) if len(ids) else np.array([], dtype=object)
    for s in ("us_14_18", "czech_15_26"):
        ref = norms[s]["all"]
        for g in ("all", "male", "female"):
            rows = np.flatnonzero((sample == s) & (group == g))
            if rows.size == 0:
                continue
            norm = norms[s][g]
            chol = np.linalg.cholesky(norm.corr)
            scores[rows] = norm.mean + norm.sd * (z[rows] @ chol.T)
            zref[rows] = (scores[rows] - ref.mean) / ref.sd
    return scores, zref


def _labels(zref: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(BIG_FIVE_CUTS), zref, side="right")


def big_five_scores(frame: pl.DataFrame, *, seed: int, standardized: bool = False) -> pl.DataFrame:
    """The latent Big Five domain scores behind :func:`enrich`'s labels, for tests and analysis.

    Returns ``persona_id`` and one float column per domain (``BIG_FIVE_DOMAINS``):
    the score on the BFI-2's 1-5 metric (not clipped to 1-5: the normal model
    is unbounded), or, with ``standardized=True``, its z-score against the norm
    sample's combined-sex mean and SD, which is what the cut points apply to.
    Null for personas under ``BIG_FIVE_MIN_AGE``, who get no labels.
    """
    ids, ages = _check_frame(frame)
    seed = _seed(seed)
    scores, zref = _big_five(ids, ages, _optional_strings(frame, "sex"), _words(ids, seed))
    values = np.where((ages < BIG_FIVE_MIN_AGE)[:, None], np.nan, zref if standardized else scores)
    return pl.DataFrame(
        {"persona_id": ids, **{d: values[:, i] for i, d in enumerate(BIG_FIVE_DOMAINS)}},
        schema={"persona_id": pl.String, **{d: pl.Float64 for d in BIG_FIVE_DOMAINS}},
    ).with_columns(pl.col(BIG_FIVE_DOMAINS).fill_nan(None))


# --------------------------------------------------------------------------- job description

# Prefixes of the Census Bureau's occupation (OCCP) labels, e.g. "MGR-Sales Managers".
_OCCUPATION_FIELDS = {
    "MGR": "management",
    "BUS": "business operations",
    "FIN": "finance",
    "CMM": "computing and mathematics",
    "ENG": "architecture and engineering",
    "SCI": "the sciences",
    "CMS": "community and social services",
    "LGL": "legal work",
    "EDU": "education",
    "ENT": "arts, design, entertainment, sports and media",
    "MED": "healthcare",
    "HLS": "healthcare support",
    "PRT": "protective services",
    "EAT": "food preparation and serving",
    "CLN": "building and grounds maintenance",
    "PRS": "personal care and services",
    "SAL": "sales",
    "OFF": "office and administrative support",
    "FFF": "farming, fishing and forestry",
    "CON": "construction",
    "EXT": "extraction",
    "RPR": "installation, maintenance and repair",
    "PRD": "production",
    "TRN": "transportation and material moving",
    "MIL": "the armed forces",
}
_OCCP = re.compile(r"^([A-Z]{3})-(.+)$")
_SMALL_WORDS = re.compile(r"\b(And|Or|Of|The|In|For|Except|To|On|With|A|An|By)\b")
_NO_OCCUPATION = ("n/a", "not applicable", "unemployed and last worked", "none")
RETIREMENT_AGE = 65  # not-in-labor-force personas from this age on are described as retired


def _occupation(occupation: str | None) -> tuple[str | None, str] | None:
    """(field, title) from a census label such as 'MGR-Sales Managers'; None when there is no occupation."""
    occ = (occupation or "").strip()
    if not occ or occ.lower().startswith(_NO_OCCUPATION):
        return None
    m = _OCCP.match(occ)
    if m and m.group(1) in _OCCUPATION_FIELDS:
        title = _SMALL_WORDS.sub(lambda w: w.group(1).lower(), m.group(2).strip())
        return _OCCUPATION_FIELDS[m.group(1)], title
    return None, occ


def _phrase(occ: tuple[str | None, str]) -> str:
    field, title = occ
    return f"{field} ({title})" if field else title


def _status_kind(status: str | None) -> str:
    s = (status or "").strip().lower()
    if not s or s.startswith("n/a"):
        return "unknown"
    if "armed forces" in s:
        return "armed_away" if "not at work" in s else "armed"
    if "unemployed" in s:
        return "unemployed"
    if "not in labor force" in s or "not in the labor force" in s or "retired" in s:
        return "not_in_labor_force"
    if "employed" in s:
        return "employed_away" if "not at work" in s else "employed"
    return "unknown"


@lru_cache(maxsize=65536)
def describe_job(age: int, employment_status: str | None, occupation: str | None) -> str:
    """A short procedural job description (no language model), PERSONA's "detailed job description".

    Under 5: "Too young to work"; 5-15, below the census's employment universe:
    "Student" (as in the paper's 10-year-old). From 16 on it follows the
    employment status: "Works in <field> (<occupation>)", "Not working, looking
    for work", "Retired, previously worked in ..." (not in the labor force and
    65 or older, a heuristic: the census does not record retirement) or "Not
    working"; a 16- or 17-year-old outside the labor force is a "Student".
    """
    if age < 5:
        return "Too young to work"
    if age < 16:
        return "Student"
    kind = _status_kind(employment_status)
    parsed = _occupation(occupation)
    occ = _phrase(parsed) if parsed else None
    if kind == "employed":
        return f"Works in {occ}" if occ else "Employed"
    if kind == "employed_away":
        return f"Has a job in {occ} but is currently not at work" if occ else "Has a job but is currently not at work"
    if kind in ("armed", "armed_away"):
        text = "Serves in the armed forces"
        if parsed:  # a military occupation only needs its title
            text += f" ({parsed[1]})" if parsed[0] == _OCCUPATION_FIELDS["MIL"] else f", in {occ}"
        return text + (", currently not at work" if kind == "armed_away" else "")
    if kind == "unemployed":
        return "Not working, looking for work" + (f"; last worked in {occ}" if occ else "")
    if kind == "not_in_labor_force":
        if age >= RETIREMENT_AGE:
            return "Retired" + (f", previously worked in {occ}" if occ else "")
        if age < ADULT_AGE:
            return "Student"
        return "Not working" + (f"; previously worked in {occ}" if occ else "")
    # employment status missing or unrecognised
    if age < ADULT_AGE:
        return "Student"
    return f"Occupation: {occ}" if occ else "Not stated"


# --------------------------------------------------------------------------- enrich


def enrich(frame: pl.DataFrame, *, seed: int) -> pl.DataFrame:
    """Add PERSONA's procedural attributes to a frame of census-derived personas.

    ``frame`` needs ``persona_id`` (unique) and ``age`` (whole years); ``sex``
    ("Male"/"Female"), ``employment_status`` and ``occupation`` are used when
    present. Returns the frame with ``ENRICHED_COLUMNS`` appended (all strings).
    The same frame and seed give the same output, and a persona's values depend
    only on ``(seed, persona_id)`` and its own row. Big Five norms come from a
    Czech 15-26 sample (adults) and a US 14-18 sample (minors), neither of them
    US adults. Children get age-band lists and "Not applicable" for the Big
    Five under ``BIG_FIVE_MIN_AGE`` and for religion under ``RELIGION_MIN_AGE``.
    Raises ``DataError`` naming the column when ``persona_id`` or ``age`` is
    missing or unusable.
    """
    ids, ages = _check_frame(frame)
    seed = _seed(seed)
    n = len(ids)
    words = _words(ids, seed)
    columns: dict[str, list[str] | np.ndarray] = {}

    _, zref = _big_five(ids, ages, _optional_strings(frame, "sex"), words)
    labels = np.asarray(BIG_FIVE_LABELS, dtype=object)
    too_young = ages < BIG_FIVE_MIN_AGE
    for i, col in enumerate(BIG_FIVE_COLUMNS):
        columns[col] = np.where(too_young, _NOT_APPLICABLE, labels[_labels(zref[:, i])]) if n else np.array([], dtype=object)

    # Each persona's uniform indexes the list its age may draw from; for adults
    # 18-79 that is the whole adult list, in file order, as before age bands.
    lists = enrichment_lists()
    order = np.argsort(ages, kind="stable")
    distinct, starts = np.unique(ages[order], return_index=True)
    by_age = list(zip(distinct.tolist(), np.split(order, starts[1:])))
    for name in LIST_ATTRIBUTES:
        u = _uniform(words[:, _SLOT_LIST[name]])
        values = np.empty(n, dtype=object)
        for age, rows in by_age:
            entries = np.asarray(lists.choices(name, age), dtype=object)
            values[rows] = entries[np.minimum((u[rows] * len(entries)).astype(np.int64), len(entries) - 1)]
        columns[name] = values

    tables = belief_tables()
    adult = ages >= ADULT_AGE
    for name in _BELIEF_ATTRIBUTES:
        table = tables[name]
        probs = np.empty((n, len(table.categories)))
        band = np.searchsorted(table.lower, ages, side="right") - 1
        inside = (band >= 0) & (ages <= table.upper[np.maximum(band, 0)])
        probs[inside] = table.probs[band[inside]]
        if table.default is not None:
            probs[~inside] = table.default
        elif np.any(adult & ~inside):  # a table without a default must cover every adult age
            raise DataError(f"{_BELIEFS_FILE}: no {name} band covers age {int(ages[adult & ~inside][0])}")
        else:
            probs[~inside] = 1.0 / probs.shape[1]  # minors, overwritten below
        values = np.asarray(table.categories, dtype=object)[_pick(_uniform(words[:, _SLOT_BELIEF[name]]), probs)]
        if name == "religion":
            values = np.where(ages >= RELIGION_MIN_AGE, values, _NOT_APPLICABLE)
        else:
            values = np.where(adult, values, TOO_YOUNG_FOR_POLITICS)
        columns[name] = values

    statuses = _optional_strings(frame, "employment_status")
    occupations = _optional_strings(frame, "occupation")
    columns["detailed_job_description"] = [describe_job(int(a), s, o) for a, s, o in zip(ages, statuses, occupations)]

    return frame.with_columns(
        [pl.Series(name, list(columns[name]), dtype=pl.String) for name in ENRICHED_COLUMNS]
    )
