"""Famous-person populations (WikiPersonas): the embedded set, YAML files, stratified seeded sampling."""

from __future__ import annotations

import random
import re
import textwrap
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from persona_exp.errors import DataError, InvalidArgumentError, SpecError
from persona_exp.population import load_population, save_population
from persona_exp.population.famous import (
    FAMOUS_COLUMNS,
    allocate,
    build_famous_from_spec,
    build_famous_population,
    famous_fingerprint,
    famous_people,
    load_famous,
    sample_famous,
    slug,
)


def write(tmp_path: Path, text: str, name: str = "people.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


UNEVEN = """
    axes:
      small:
        categories:
          Only:
            - {name: Ada One, description: The only person of the small axis.}
      large:
        categories:
          Big:
            - {name: Bea Two, description: First of five.}
            - {name: Cal Three, description: Second of five.}
            - {name: Dee Four, description: Third of five.}
            - {name: Eve Five, description: Fourth of five.}
            - {name: Fay Six, description: Fifth of five.}
          Tiny:
            - {name: Gus Seven, description: Alone in his category.}
"""


# --------------------------------------------------------------------------- the embedded set


def test_embedded_set_has_axes_categories_and_described_people():
    fset = load_famous()
    assert len(fset.axes) >= 4
    frame = famous_people()
    assert tuple(frame.columns) == FAMOUS_COLUMNS
    for axis, spec in fset.axes.items():
        assert 2 <= len(spec.categories) <= 4, axis
        for category, people in spec.categories.items():
            assert len(people) >= 2, (axis, category)
    assert frame["persona_id"].n_unique() == frame.height
    assert frame.select("name", "axis").unique().height == frame.height
    for text in frame["description"]:
        assert text.endswith(".") and "\n" not in text and 20 <= len(text) <= 200, text
        assert len(re.findall(r"[a-z]\. [A-Z]", text)) == 0, f"more than one sentence: {text}"
    assert frame.null_count().row(0) == (0,) * len(FAMOUS_COLUMNS)


def test_everyone_when_no_size_in_declared_order_with_stable_ids():
    a = build_famous_population(seed=0)
    b = build_famous_population(seed=99)
    everyone = famous_people()
    assert a.frame.equals(everyone) and b.frame.equals(everyone)  # the seed does not matter when all are taken
    assert a.key == b.key
    assert a.frame["persona_id"][0] == f"{slug(everyone['axis'][0])}:{slug(everyone['name'][0])}"
    assert a.report["size"] == a.report["available"] == everyone.height
    assert sum(s["drawn"] for s in a.report["strata"]) == everyone.height


# --------------------------------------------------------------------------- stratified sampling


def test_one_per_category_when_size_equals_the_number_of_categories():
    everyone = famous_people()
    n_categories = everyone.select("axis", "category").unique().height
    pop = build_famous_population(size=n_categories, seed=5)
    counts = Counter(zip(pop.frame["axis"], pop.frame["category"]))
    assert len(counts) == n_categories and set(counts.values()) == {1}


@pytest.mark.parametrize("size", [1, 3, 7, 10, 13, 30, 47])
def test_strata_are_as_even_as_possible(size):
    pop = build_famous_population(size=size, seed=size)
    frame = pop.frame
    assert frame.height == size and frame["persona_id"].n_unique() == size
    per_axis = Counter(frame["axis"])
    axes = famous_people()["axis"].unique().to_list()
    full = [per_axis.get(a, 0) for a in axes]
    assert max(full) - min(full) <= 1, per_axis
    for axis in axes:
        cats = famous_people().filter(axis=axis)["category"].unique().to_list()
        got = Counter(frame.filter(axis=axis)["category"])
        spread = [got.get(c, 0) for c in cats]
        assert max(spread) - min(spread) <= 1, (axis, got)
    # the report says the same as the frame
    for s in pop.report["strata"]:
        assert s["drawn"] == frame.filter(axis=s["axis"], category=s["category"]).height


def test_capacities_cap_strata_and_the_rest_goes_elsewhere(tmp_path):
    path = write(tmp_path, UNEVEN)
    pop = build_famous_population(path, size=5, seed=1)
    assert Counter(pop.frame["axis"]) == {"small": 1, "large": 4}  # an even split would give small 2 of its 1
    assert Counter(pop.frame["category"]) == {"Only": 1, "Big": 3, "Tiny": 1}
    assert {(s["category"], s["available"], s["drawn"]) for s in pop.report["strata"]} == {("Only", 1, 1), ("Big", 5, 3), ("Tiny", 1, 1)}


def test_same_seed_same_personas_other_seeds_differ():
    a = build_famous_population(size=9, seed=11)
    b = build_famous_population(size=9, seed=11)
    assert a.frame.equals(b.frame) and a.key == b.key
    others = {tuple(build_famous_population(size=9, seed=s).frame["persona_id"]) for s in range(12, 20)}
    assert len(others | {tuple(a.frame["persona_id"])}) > 1


def test_every_person_can_be_drawn():
    """Over many seeds, the draw within a category reaches every person (not always the first ones)."""
    everyone = famous_people()
    seen = set()
    for seed in range(60):
        frame, _ = sample_famous(everyone, 16, seed=seed)
        seen.update(frame["persona_id"])
    assert seen == set(everyone["persona_id"])


def test_axes_restrict_the_population():
    pop = build_famous_population(size=6, axes=["Politics"], seed=0)
    assert set(pop.frame["axis"]) == {"politics"}
    assert Counter(pop.frame["category"]).most_common(1)[0][1] <= 2
    with pytest.raises(InvalidArgumentError, match=r"'diet', not an axis of .*its axes are politics, religion"):
        build_famous_population(axes=["diet"], seed=0)
    with pytest.raises(InvalidArgumentError, match="population.axes is empty"):
        build_famous_population(axes=[], seed=0)


def test_sizes_out_of_range_are_clear_errors():
    n = famous_people().height
    with pytest.raises(DataError, match=rf"population.size is {n + 1} but .* has {n} famous personas"):
        build_famous_population(size=n + 1, seed=0)
    with pytest.raises(DataError, match=r"has 12 famous personas on the axes religion"):
        build_famous_population(size=13, axes=["religion"], seed=0)
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        build_famous_population(size=0, seed=0)


def test_allocate_splits_evenly_within_capacities():
    rng = random.Random(0)
    assert allocate(8, [10, 10, 10, 10], rng) == [2, 2, 2, 2]
    assert allocate(10, [1, 10, 2], rng) == [1, 7, 2]
    assert allocate(0, [3, 3], rng) == [0, 0]
    assert allocate(6, [3, 0, 3], rng) == [3, 0, 3]
    got = allocate(5, [4, 4, 4], rng)
    assert sum(got) == 5 and sorted(got) == [1, 2, 2]
    with pytest.raises(InvalidArgumentError):
        allocate(7, [3, 3], rng)


def test_a_person_on_two_axes_is_two_personas(tmp_path):
    path = write(tmp_path, """
        axes:
          age:
            categories:
              Adults: [{name: Pat Example, description: An adult.}]
              Seniors: [{name: Sam Example, description: A senior.}]
          gender:
            categories:
              Male: [{name: Pat Example, description: A man.}]
    """)
    frame = build_famous_population(path, seed=0).frame
    assert frame.filter(name="Pat Example")["persona_id"].to_list() == ["age:pat-example", "gender:pat-example"]


def test_population_round_trips_through_parquet(tmp_path):
    pop = build_famous_population(size=7, seed=2)
    path = save_population(pop, tmp_path / "famous.parquet")
    back = load_population(path)
    assert back.key == pop.key and back.frame.equals(pop.frame)
    assert back.report["strata"] == pop.report["strata"]


def test_spec_hook_reads_people_size_and_axes(tmp_path):
    path = write(tmp_path, UNEVEN)
    spec = SimpleNamespace(source="famous", people=str(path), size=2, axes=["large"])
    pop = build_famous_from_spec(spec, seed=0)
    assert pop.frame.height == 2 and set(pop.frame["axis"]) == {"large"}
    everyone = build_famous_from_spec(SimpleNamespace(source="famous", people=None, size=None, axes=None), seed=0)
    assert everyone.frame.equals(famous_people())


def test_fingerprint_follows_the_file(tmp_path):
    path = write(tmp_path, UNEVEN)
    before = famous_fingerprint(path)
    assert famous_fingerprint(path) == before and famous_fingerprint() != before
    path.write_text(path.read_text().replace("Gus Seven", "Gus Eight"))
    assert famous_fingerprint(path) != before


# --------------------------------------------------------------------------- errors name file, line and field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            """
            axes:
              politics:
                categories:
                  Liberal:
                    - name: A Person
                      descripton: a typo
            """,
            r"people\.yaml:6:11: axes\.politics\.categories\.Liberal\[0\]\.descripton: unknown key",
        ),
        (
            """
            axes:
              politics:
                categories:
                  Liberal:
                    - name: A Person
            """,
            r"people\.yaml:5:11: axes\.politics\.categories\.Liberal\[0\]\.description: this field is required",
        ),
        (
            """
            axes:
              politics:
                categories:
                  Liberal: []
            """,
            r"people\.yaml:4:16: axes\.politics\.categories\.Liberal: List should have at least 1 item",
        ),
        (
            """
            axes:
              politics:
                about: no categories here
            """,
            r"people\.yaml:3:5: axes\.politics\.categories: this field is required",
        ),
        (
            """
            axes:
              politics:
                categories:
                  Liberal:
                    - {name: "  ", description: blank name}
            """,
            r"people\.yaml:5:18: axes\.politics\.categories\.Liberal\[0\]\.name: String should have at least 1 character",
        ),
        (
            """
            axes:
              politics:
                categories:
                  Liberal:
                    - {name: Jo Doe, description: first.}
                  Centrist:
                    - {name: jo  doe, description: again.}
            """,
            r"people\.yaml:7:18: axes\.politics\.categories\.Centrist\[0\]\.name: 'jo  doe' is already listed on the "
            r"'politics' axis \(at .*people\.yaml:5:18, category 'Liberal'\)",
        ),
        (
            """
            axes:
              politics:
                categories:
                  Liberal:
                    - {name: Jo Doe, description: first.}
                  Liberal:
                    - {name: Al Roe, description: second.}
            """,
            r"people\.yaml:6:7: axes\.politics\.categories\.Liberal: the key 'Liberal' appears twice",
        ),
        ("- a list, not a mapping\n", r"people\.yaml: a famous-person file is a mapping with an 'axes' key"),
        ("axes: {}\n", r"people\.yaml:1:7: axes: Dictionary should have at least 1 item"),
        ("axes:\n  politics: [unclosed\n", r"people\.yaml:3:1: this is not valid YAML"),
    ],
)
def test_mistakes_name_file_line_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match=message):
        build_famous_population(path, seed=0)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError, match=r"nowhere\.yaml: the famous-person file does not exist"):
        load_famous(tmp_path / "nowhere.yaml")
