"""Persona populations (PERSONA, section 3.1).

:func:`build_population` draws personas from ACS PUMS microdata (or, offline,
from the embedded national default: real 2018 PUMS records of twelve states
calibrated to national tables), applies declarative filters and counts (or
applies) consistency rules, and adds the procedural attributes of :func:`enrich`
(Big Five labels, quirks, mannerisms, personal time, lifestyle, ideology,
political views, religion, job description). :data:`ATTRIBUTES` lists the
paper's 33 attributes in canonical order; :func:`render_persona` writes a
persona as prompt text and :func:`loo_variants` builds the leave-one-out
versions. :func:`build_famous_population` builds WikiPersonas-style populations of
public figures (axes -> categories -> people). The published figures and
hand-written lists live in ``data/``.

The steps that ask a language model (PERSONA's consistency check, open-ended
fields, WikiPersonas' generated people) are declared in the spec's
``population.llm`` block (:class:`PopulationLLM`) and run on top of the
procedural population with the run's models and call cache, in
:mod:`persona_exp.population.llm`.
"""

from __future__ import annotations

from persona_exp.population.attributes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    CENSUS_ATTRIBUTES,
    PROCEDURAL_ATTRIBUTES,
    Attribute,
    attribute,
)
from persona_exp.population.build import PopulationLLM, PopulationSpec, build_population
from persona_exp.population.consistency import RULES, Rule, check_consistency
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
from persona_exp.population.famous import (
    FAMOUS_COLUMNS,
    FamousSet,
    build_famous_population,
    famous_people,
    load_famous,
    sample_famous,
)
from persona_exp.population.filters import Filter, apply_filters, parse_filter
from persona_exp.population.render import LooPair, LooShortfallWarning, LooVariants, loo_variants, render_persona
from persona_exp.population.represent import print_representativeness, representativeness
from persona_exp.population.stored import Population, load_population, population_key, save_population

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "Attribute",
    "BIG_FIVE_COLUMNS",
    "BIG_FIVE_CUTS",
    "BIG_FIVE_DOMAINS",
    "BIG_FIVE_LABELS",
    "CENSUS_ATTRIBUTES",
    "ENRICHED_COLUMNS",
    "FAMOUS_COLUMNS",
    "FamousSet",
    "Filter",
    "LooPair",
    "LooShortfallWarning",
    "LooVariants",
    "PROCEDURAL_ATTRIBUTES",
    "Population",
    "PopulationLLM",
    "PopulationSpec",
    "RULES",
    "Rule",
    "TOO_YOUNG_FOR_POLITICS",
    "apply_filters",
    "attribute",
    "belief_tables",
    "big_five_norms",
    "big_five_scores",
    "build_famous_population",
    "build_population",
    "check_consistency",
    "describe_job",
    "enrich",
    "enrichment_lists",
    "famous_people",
    "load_famous",
    "load_population",
    "loo_variants",
    "parse_filter",
    "population_key",
    "print_representativeness",
    "render_persona",
    "representativeness",
    "sample_famous",
    "save_population",
]
