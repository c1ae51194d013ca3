"""The report lets a reader audit the judgments: sample items per step (the
persona, the question, the answers compared and the verdict, split back out of
the prompts as sent), and table rows that link to an item of the design.

Everything is checked against the run's own stored tables, for every
experiment kind, and for a run stored before transcripts existed."""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml

from persona_exp.report import build, render_report
from persona_exp.store import resolve_run

ROOT = Path(__file__).resolve().parents[2]
SPECS = {
    "conditioning": ["--set", "population.size=40", "--set", "experiment.n_personas=4", "--set", "experiment.n_questions=3"],
    "dpf": ["--set", "population.size=20", "--set", "experiment.n_train=2", "--set", "experiment.n_seen_test=1", "--set", "experiment.n_heldout=1"],
    "wikipersona": ["--set", "population.size=4", "--set", "experiment.n_personal=2", "--set", "experiment.n_divergent=2"],
}
# A famous person whose name is markup: it reaches prompts, answers (the gold persona repeats the name) and tables.
MARKUP_NAME = '<img src=x onerror="alert(1)"> Ada & <b>Co</b>'
HEADLINE = {"loo": "loo_attributes", "agreement": "agreement_pairs", "conditioning": "conditioning", "dpf": "dpf_summary",
            "wikipersona": "wikipersona_conditions"}


@dataclass
class Kinds:
    root: Path
    ids: dict[str, str]  # kind -> run id

    def info(self, kind: str):
        return resolve_run(self.root / ".persona-exp", self.ids[kind])

    def table(self, kind: str, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.info(kind).path / f"{name}.parquet")


def _people_file(path: Path) -> Path:
    people = {"about": "a test set", "axes": {
        "politics": {"categories": {"Left": [{"name": MARKUP_NAME, "description": "A test person <i>with markup</i>."}],
                                    "Right": [{"name": "Bo Brown", "description": "Another test person."}]}},
        "diet": {"categories": {"Vegan": [{"name": "Cy Chen", "description": "A third test person."}],
                                "Omnivore": [{"name": "Di Diaz", "description": "A fourth test person."}]}}}}
    path.write_text(yaml.safe_dump(people), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def kinds(runs, cli, tmp_path_factory) -> Kinds:
    """Small runs of the kinds the shared test runs lack, in one store; LOO and agreement come from the shared test runs."""
    root = tmp_path_factory.mktemp("kinds")
    people = _people_file(root / "people.yaml")
    ids = {}
    for kind, args in SPECS.items():
        extra = ["--set", f"population.people={people}"] if kind == "wikipersona" else []
        r = cli(root, "run", ROOT / "experiments" / f"{kind}.yaml", *args, *extra, "--set", "experiment.n_resamples=100", "--no-progress", "--json")
        assert r.returncode == 0, r.stderr
        ids[kind] = json.loads(r.stdout)["run_id"]
    for kind, run_id in (("loo", runs.b), ("agreement", runs.agreement)):
        dest = root / ".persona-exp" / "runs" / kind / run_id
        shutil.copytree(runs.folder(run_id), dest)
        ids[kind] = run_id
    return Kinds(root, ids)


@pytest.fixture(scope="module")
def pages(kinds) -> dict[str, str]:
    return {kind: render_report(kinds.info(kind)) for kind in kinds.ids}


def _section(text: str, anchor: str) -> str:
    part = text[text.index(f'<section id="{anchor}">'):]
    return part[: part.index("</section>")]


def _cards(part: str) -> dict[str, str]:
    """Call key -> the unescaped text of its card (each card runs to the next one or the section's end)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div class="call-card" data-call="([0-9a-f]+)"', part)]
    ends = [s for s, _ in starts[1:]] + [len(part)]
    return {key: html.unescape(part[s:e]) for (s, key), e in zip(starts, ends)}


def _fields(card: str) -> dict[str, str]:
    """Label -> text of the fields of a card (or item), unescaped."""
    return {html.unescape(m.group(1)): html.unescape(m.group(2))
            for m in re.finditer(r'<dt>([^<]*)</dt><dd>(?:<details class="long"><summary>[^<]*</summary>)?<pre class="call">(.*?)</pre>', card, re.S)}


def _items(text: str) -> dict[int, str]:
    """Item number -> raw html of the items of the Examples section."""
    part = _section(text, "examples")
    starts = [(m.start(), int(m.group(1))) for m in re.finditer(r'<div class="item" id="item-(\d+)">', part)]
    ends = [s for s, _ in starts[1:]] + [len(part)]
    return {n: part[s:e] for (s, n), e in zip(starts, ends)}


def _table_links(text: str, name: str) -> list[str | None]:
    """Per body row of a table, the item it links to (None: no link)."""
    part = text[text.index(f'<table data-table="{name}">'):]
    body = part[part.index("<tbody>"): part.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [m.group(1) if (m := re.match(r'<td><a href="#(item-\d+)">', r)) else None for r in rows]


def _anchors_resolve(text: str) -> None:
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate ids"
    for ref in re.findall(r'href="#([^"]+)"', text):
        assert ref in ids, f"dangling link #{ref}"


def _answer_of(calls: pl.DataFrame, key: str) -> str:
    """What a call's answer filled into a later prompt: its parsed value when text, else its raw answer."""
    r = calls.filter(pl.col("key") == key).row(0, named=True)
    return r["value"] if r["value"] is not None else r["text"]


# --------------------------------------------------------------------------- sample items per step


@pytest.mark.parametrize("kind", ["loo", "agreement", "dpf", "wikipersona"])
def test_judge_samples_show_question_both_answers_and_verdict_from_the_tables(kinds, pages, kind):
    calls = kinds.table(kind, "calls")
    sent = kinds.table(kind, "transcripts")
    cards = _cards(_section(pages[kind], "samples"))
    judged = 0
    for key, card in cards.items():
        row = calls.filter(pl.col("key") == key).row(0, named=True)
        inputs = sent.filter(pl.col("key") == key)["inputs"][0].to_list()
        fields = _fields(card)
        if "answer A" not in " ".join(fields):
            continue
        judged += 1
        (label_a, text_a), = [(k, v) for k, v in fields.items() if k.startswith("answer A")]
        (label_b, text_b), = [(k, v) for k, v in fields.items() if k.startswith("answer B")]
        # Both answers as the calls table stores them, shown in the order of the prompt (the judge's inputs: A, then B) and named by their step.
        assert [text_a, text_b] == [_answer_of(calls, k) for k in inputs]
        step_of = dict(zip(calls["key"], calls["step"]))
        assert label_a == f"answer A (from {step_of[inputs[0]]})" and label_b == f"answer B (from {step_of[inputs[1]]})"
        # The question and persona are the ones the judge was sent; the verdict is the parsed value, then the raw answer.
        message = json.loads(sent.filter(pl.col("key") == key)["messages"][0])[-1]["content"]
        who = fields.get("persona", fields.get("prefix"))  # WikiPersonas' predict step is told a prefix, not a persona
        assert fields["question"] and fields["question"] in message and who and who in message
        assert f'<dd class="verdict">{row["value"]}' in card and fields["raw answer"] == row["text"]
    assert judged >= 3


def test_sample_question_is_the_stored_prompt_text(kinds, pages):
    """LOO: the question of a judge sample is the prompts table's text of its design item's question."""
    design, prompts = kinds.table("loo", "design"), kinds.table("loo", "prompts")
    text_of = dict(zip(prompts["id"], prompts["text"]))
    question_of = {**dict(zip(design["judge_with_key"], design["question_id"])), **dict(zip(design["judge_without_key"], design["question_id"]))}
    cards = _cards(_section(pages["loo"], "samples"))
    checked = [key for key in cards if key in question_of]
    assert checked
    for key in checked:
        assert _fields(cards[key])["question"] == text_of[question_of[key]]


@pytest.mark.parametrize("kind", ["loo", "agreement", "conditioning", "dpf", "wikipersona"])
def test_every_step_has_its_sample_items(kinds, pages, kind):
    calls = kinds.table(kind, "calls")
    part = _section(pages[kind], "samples")
    cards = _cards(part)
    counts = dict(calls.group_by("step").len().iter_rows())
    for step, n in counts.items():
        assert f"<h3>{html.escape(step)}</h3>" in part
    shown = calls.filter(pl.col("key").is_in(list(cards)))["step"].value_counts()
    assert dict(shown.iter_rows()) == {s: min(build.SAMPLES_PER_STEP, n) for s, n in counts.items()}
    # Chosen the same way on every render.
    assert list(_cards(_section(render_report(kinds.info(kind)), "samples"))) == list(cards)


def test_generation_samples_show_question_persona_and_answer(kinds, pages):
    """Conditioning: an answer given for a persona shows the question, the persona and the answer as stored."""
    calls = kinds.table("conditioning", "calls")
    cards = _cards(_section(pages["conditioning"], "samples"))
    persona_answers = calls.filter((pl.col("step") == "answer:persona") & pl.col("key").is_in(list(cards)))
    assert persona_answers.height
    personas = kinds.table("conditioning", "personas")
    for r in persona_answers.iter_rows(named=True):
        fields = _fields(cards[r["key"]])
        assert fields["answer"] == r["text"] and fields["question"] in set(kinds.table("conditioning", "prompts")["text"])
        assert any(f"Age: {age}\n" in fields["persona"] for age in personas["age"])


# --------------------------------------------------------------------------- links from the tables


def test_loo_attribute_rows_link_to_an_item_of_that_attribute(kinds, pages):
    text = pages["loo"]
    head = kinds.table("loo", HEADLINE["loo"])
    design = kinds.table("loo", "design")
    calls = kinds.table("loo", "calls")
    links = _table_links(text, "loo_attributes")
    assert len(links) == head.height and all(links)
    items = _items(text)
    for attribute, anchor in zip(head["attribute"], links):
        n = int(anchor.removeprefix("item-"))
        assert n in items  # the link's target is in the page
        row = design.row(n, named=True)
        assert row["attribute"] == attribute
        cards = _cards(items[n])
        # Both judgments of the item, each with its verdict; the answers they compare are shown once, above them.
        assert list(cards) == [row["judge_without_key"], row["judge_with_key"]]
        for key in cards:
            assert f'<dd class="verdict">{calls.filter(pl.col("key") == key)["value"][0]}' in cards[key]
        shared = _fields(items[n][: items[n].index('<div class="call-card"')])
        assert {_answer_of(calls, row["base_key"]), _answer_of(calls, row["revise_key"])} == {v for k, v in shared.items() if k.startswith("answer ")}
        # The persona with the attribute is the persona without it plus the attribute's line.
        without, with_ = (_fields(cards[row[c]])["persona"].splitlines() for c in ("judge_without_key", "judge_with_key"))
        added = [line for line in with_ if line not in without]
        assert len(added) == 1 and set(without) < set(with_)
        assert added[0].split(":")[0].lower() == attribute.replace("_", " ")
    _anchors_resolve(text)


@pytest.mark.parametrize("kind", ["agreement", "conditioning", "dpf", "wikipersona"])
def test_headline_rows_link_to_matching_items(kinds, pages, kind):
    text = pages[kind]
    head = kinds.table(kind, HEADLINE[kind])
    design = kinds.table(kind, "design")
    links = _table_links(text, HEADLINE[kind])
    items = _items(text)
    assert len(links) == head.height and len(items) <= build.EXAMPLES_MAX
    for row, anchor in zip(head.iter_rows(named=True), links):
        if kind == "dpf" and row["split"] not in set(design["split"]):
            assert anchor is None  # the row of all splits names no item
            continue
        assert anchor is not None
        n = int(anchor.removeprefix("item-"))
        assert n in items
        item = design.row(n, named=True)
        if kind == "conditioning":
            assert (item["mode"], item["critic"]) == (row["mode"], row["critic"])
        elif kind == "dpf":
            assert item["split"] == row["split"]
        elif kind == "wikipersona":
            assert row["condition"] in (item["first"], item["second"])
        else:  # a pair of judges: an item where they disagree, when there is one
            labels = kinds.table(kind, "agreement_labels")
            differ = labels.filter(pl.col(row["a"]) != pl.col(row["b"]))
            if differ.height:
                assert item["item_id"] in set(differ["item_id"])
        assert set(_cards(items[n])) <= {v for k, v in item.items() if k.endswith("_key")}
    _anchors_resolve(text)


def test_wikipersona_matrix_rows_link_to_a_comparison_of_both_conditions(kinds, pages):
    text = pages["wikipersona"]
    matrix = kinds.table("wikipersona", "wikipersona_matrix")
    design = kinds.table("wikipersona", "design")
    links = _table_links(text, "wikipersona_matrix")
    assert all(links)
    for row, anchor in zip(matrix.iter_rows(named=True), links):
        item = design.row(int(anchor.removeprefix("item-")), named=True)
        assert {item["first"], item["second"]} == {row["condition"], row["opponent"]}


def test_linked_items_are_capped(kinds, monkeypatch):
    monkeypatch.setattr(build, "EXAMPLES_MAX", 2)
    text = render_report(kinds.info("conditioning"))
    linked = {a for name in ("conditioning", "conditioning_slices") for a in _table_links(text, name) if a}
    assert len(linked) == 2 == len(_items(text))
    assert None in _table_links(text, "conditioning_slices")  # rows past the cap have no link
    _anchors_resolve(text)


def test_a_comparison_report_links_nothing(runs):
    text = render_report(resolve_run(runs.store, runs.b), resolve_run(runs.store, runs.a), n_resamples=100)
    assert 'href="#item-' not in text and 'id="item-' not in text


# --------------------------------------------------------------------------- escaping and older runs


def test_markup_in_answers_and_personas_is_escaped(kinds, pages):
    text = pages["wikipersona"]
    calls = kinds.table("wikipersona", "calls")
    gold = calls.filter(pl.col("text").str.contains(MARKUP_NAME, literal=True))
    assert gold.height  # the model's answers repeat the name
    assert MARKUP_NAME not in text and "<img" not in text.lower() and "<b>Co</b>" not in text
    assert html.escape(MARKUP_NAME) in text
    cards = {**_cards(_section(text, "examples")), **_cards(_section(text, "samples"))}
    assert any(MARKUP_NAME in c for c in cards.values())  # unescaped, a card holds the name as written
    for key in set(gold["key"]) & set(cards):
        assert MARKUP_NAME in _fields(cards[key])["answer"]


def test_a_run_without_transcripts_still_reports_its_items(kinds, tmp_path):
    src = kinds.info("loo").path
    dest = tmp_path / ".persona-exp" / "runs" / "loo" / src.name
    shutil.copytree(src, dest)
    (dest / "transcripts.parquet").unlink()
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest.pop("tables", None)  # older runs did not list their tables
    (dest / "manifest.json").write_text(json.dumps(manifest))
    text = render_report(resolve_run(tmp_path / ".persona-exp", src.name))
    assert "no transcripts" in _section(text, "samples") and "<div class=\"call-card\"" not in _section(text, "samples")
    # Links still lead to the items, which show every call's answer (what was sent is unknown).
    design = kinds.table("loo", "design")
    calls = kinds.table("loo", "calls")
    links = _table_links(text, "loo_attributes")
    assert all(links)
    items = _items(text)
    n = int(links[0].removeprefix("item-"))
    row = design.row(n, named=True)
    cards = _cards(items[n])
    assert list(cards) == [row[c] for c in ("base_key", "revise_key", "judge_without_key", "judge_with_key")]
    assert _fields(cards[row["revise_key"]])["answer"] == calls.filter(pl.col("key") == row["revise_key"])["text"][0]
    _anchors_resolve(text)


def test_prompt_topics_figure_counts_the_runs_prompts(kinds, pages):
    """PERSONA Fig. 3: the topic distribution of the run's prompts, as the prompts table holds them."""
    prompts = kinds.table("loo", "prompts")
    part = _section(pages["loo"], "prompts")
    assert 'data-plot="prompt-topics"' in part
    expected = dict(prompts.group_by("topic").len().iter_rows())
    assert len(expected) > 1
    for topic, n in expected.items():
        assert re.search(rf"<td[^>]*>{re.escape(html.escape(topic))}</td><td[^>]*>{n}</td>", part), topic
