"""Persona populations: procedural enrichment of census-derived personas.

:func:`enrich` adds PERSONA's procedural attributes (Big Five labels, quirks,
mannerisms, personal time, lifestyle, ideology, political views, religion and a
job description) to a polars frame with ``persona_id`` and ``age``; the
published figures and hand-written lists it draws from live in ``data/``.
"""

from __future__ import annotations

from persona_exp.population.enrich import (
    BIG_FIVE_COLUMNS,
    BIG_FIVE_CUTS,
    BIG_FIVE_DOMAINS,
    BIG_FIVE_LABELS,
    ENRICHED_COLUMNS,
    TOO_YOUNG_FOR_POLITICS,
    belief_tables,
    big_five_norms,
    big_five_scores,
    describe_job,
    enrich,
    enrichment_lists,
)

__all__ = [
    "BIG_FIVE_COLUMNS",
    "BIG_FIVE_CUTS",
    "BIG_FIVE_DOMAINS",
    "BIG_FIVE_LABELS",
    "ENRICHED_COLUMNS",
    "TOO_YOUNG_FOR_POLITICS",
    "belief_tables",
    "big_five_norms",
    "big_five_scores",
    "describe_job",
    "enrich",
    "enrichment_lists",
]
