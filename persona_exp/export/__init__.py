"""Exporting a run's judgments and preference pairs as datasets.

Two tables per run, ``pairs`` and ``judgments``, written as JSON lines or
parquet (one table, one file), or as a folder the Hugging Face ``datasets``
library reads: both tables as parquet plus a dataset card whose front matter
names them as configs (``load_dataset(folder)`` gives the pairs,
``load_dataset(folder, "judgments")`` the judgments). Writing needs only polars.
``COLUMNS`` documents every column; the card repeats it.

Leave-one-out runs (kind ``loo``): a pair per judgment of the judge
role-playing the persona *with* the attribute: prompt = the question, chosen =
the answer that judge preferred, rejected = the other, with the persona, the
attribute and its value. Answer texts come from the run's calls table (the
design's ``base_key`` / ``revise_key``). Persona texts are not stored in a run:
they are rebuilt from the stored personas and spec and kept only where the
rebuilt judge prompt hashes to the stored judge call key, so a persona text in
the export is exactly what the judge saw (otherwise it is null, with a note).
The judgments table has both judges' choices of every item.

DPF runs (kind ``dpf``): the run's preference table and its verification
verdicts. WikiPersonas runs (kind ``wikipersona``): the winner of each
persona's single-elimination bracket against another candidate, and every
comparison of the brackets. Other kinds have no preference pairs to export
and raise DataError.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import polars as pl

from persona_exp.errors import DataError
from persona_exp.store import RunInfo, is_simulated, load_run, simulated_roles

__all__ = ["COLUMNS", "EXPORTABLE", "FORMATS", "TABLES", "export_run", "export_tables"]

FORMATS = ("jsonl", "parquet", "hf")
TABLES = ("pairs", "judgments")
EXPORTABLE = ("loo", "dpf", "wikipersona")


def export_tables(info: RunInfo) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """The ``pairs`` and ``judgments`` tables of a run, and notes on what was left out."""
    kind = info.manifest.get("kind")
    if kind not in EXPORTABLE:
        raise DataError(
            f"run {info.experiment}/{info.run_id} is of kind {kind!r}, which has no preference pairs to export; "
            f"export works on runs of kind {' or '.join(EXPORTABLE)}."
        )
    try:
        _, tables = load_run(info)
    except (OSError, ValueError) as exc:
        raise DataError(f"run {info.experiment}/{info.run_id} cannot be read from {info.path} ({exc}).") from None
    frames, notes = {"loo": _loo, "dpf": _dpf, "wikipersona": _wikipersona}[kind](info, tables)
    simulated = is_simulated(info.manifest)  # on every row, so a row taken out of the file still says where it came from
    return {name: f.with_columns(pl.lit(simulated).alias("simulated")) for name, f in frames.items()}, notes


def _need(info: RunInfo, tables: dict[str, pl.DataFrame], *names: str) -> None:
    missing = [n for n in names if n not in tables]
    if missing:
        raise DataError(f"run {info.experiment}/{info.run_id} lacks the table(s) {', '.join(missing)}; is the run folder complete?")


def _answers(calls: pl.DataFrame) -> pl.DataFrame:
    """key -> the answer text a later call read (the parsed value, e.g. the
    revision without its markers), for calls that succeeded."""
    return calls.filter(pl.col("status") == "ok").select("key", pl.coalesce("value", "text").alias("answer"))


def _loo(info: RunInfo, tables: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[str]]:
    _need(info, tables, "loo_judgments", "calls", "prompts", "personas")
    notes: list[str] = []
    j = tables["loo_judgments"]
    questions = tables["prompts"].select(pl.col("id").alias("question_id"), pl.col("text").alias("question"))
    def label(col: str) -> pl.Expr:
        return pl.when(pl.col(col) >= 0).then(pl.col(col) == 1).otherwise(None)

    judgments = (
        j.join(questions, on="question_id", how="left")
        .with_columns(prefers_refined_without=label("without"), prefers_refined_with=label("with"))
        .with_columns(agree=pl.col("prefers_refined_without") == pl.col("prefers_refined_with"))
        .select("attribute", "persona_id", "question_id", "question", "refined_is_a", "prefers_refined_without", "prefers_refined_with", "agree",
                "base_key", "revise_key", "judge_without_key", "judge_with_key")
    )
    answers = _answers(tables["calls"])
    texts = _persona_texts(info, tables, judgments, notes)
    personas = tables["personas"]
    values = pl.concat(
        [personas.select(pl.col("persona_id").cast(pl.String), pl.lit(a).alias("attribute"), pl.col(a).cast(pl.String).alias("attribute_value"))
         for a in judgments["attribute"].unique(maintain_order=True) if a in personas.columns],
        how="vertical",
    ) if judgments.height else pl.DataFrame(schema={"persona_id": pl.String, "attribute": pl.String, "attribute_value": pl.String})
    pairs = (
        judgments.filter(pl.col("prefers_refined_with").is_not_null())
        .join(answers.rename({"key": "revise_key", "answer": "refined"}), on="revise_key", how="left")
        .join(answers.rename({"key": "base_key", "answer": "base"}), on="base_key", how="left")
        .join(texts, on=["attribute", "persona_id", "question_id"], how="left")
        .join(values, on=["persona_id", "attribute"], how="left")
        .with_columns(
            chosen=pl.when(pl.col("prefers_refined_with")).then(pl.col("refined")).otherwise(pl.col("base")),
            rejected=pl.when(pl.col("prefers_refined_with")).then(pl.col("base")).otherwise(pl.col("refined")),
            chosen_is_refined=pl.col("prefers_refined_with"),
            without_agrees=pl.col("agree"),
        )
    )
    incomplete = pairs.filter(pl.col("chosen").is_null() | pl.col("rejected").is_null()).height
    if incomplete:
        notes.append(f"{incomplete} judgments left out of the pairs: an answer they compared is missing from the calls table.")
    missing = judgments.height - judgments.filter(pl.col("prefers_refined_with").is_not_null()).height
    if missing:
        notes.append(f"{missing} judgments with the attribute are missing (failed or unparseable judge calls) and give no pair.")
    pairs = pairs.filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null()).select(
        pl.col("question").alias("prompt"), "chosen", "rejected", "persona", "persona_without", "persona_id", "attribute", "attribute_value",
        "question_id", "chosen_is_refined", "without_agrees",
    )
    return {"pairs": pairs, "judgments": judgments}, notes


def _persona_texts(info: RunInfo, tables: dict[str, pl.DataFrame], judgments: pl.DataFrame, notes: list[str]) -> pl.DataFrame:
    """(attribute, persona_id, question_id) -> the persona texts the two judges
    saw. They are rebuilt from the stored personas and spec with the
    experiment's own helpers (leave-one-out variants, answer chain, judge call)
    on a scratch plan, and a text is kept only where the rebuilt judge call has
    the stored key: then it is exactly the text that judge was shown."""
    schema = {"attribute": pl.String, "persona_id": pl.String, "question_id": pl.String, "persona": pl.String, "persona_without": pl.String}
    if not judgments.height:
        return pl.DataFrame(schema=schema)
    try:
        from persona_exp.experiments import loo
        from persona_exp.steps import Context, add_call, add_refinement
        from persona_exp.plan import Plan
        from persona_exp.population import loo_variants, render_persona
        from persona_exp.spec.models import ModelConfig

        # Only the blocks the prompts depend on are validated, so a change
        # elsewhere in the spec schema does not stop an export.
        spec = info.manifest["spec"]
        params = loo.Params.model_validate(spec["experiment"])
        models = {role: ModelConfig.model_validate(spec["models"][role]) for role in loo.ROLES}
        seed = int(spec.get("seed", info.manifest.get("seed", 0)))
        personas = tables["personas"]
        ctx = Context(name=info.experiment, seed=seed, params=params, models=models, personas=personas, prompts=tables["prompts"])
        rows = {str(r["persona_id"]): r for r in personas.iter_rows(named=True)}
        versions: dict[tuple[str, str], tuple[str, str]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for attr in judgments["attribute"].unique(maintain_order=True).to_list():
                for pair in loo_variants(personas, attr, n_personas=params.n_personas, k=params.k, seed=seed):
                    row = rows[pair.persona_id]
                    versions[(attr, pair.persona_id)] = (render_persona(row, pair.base), render_persona(row, pair.with_attribute))
    except Exception as exc:  # an old or foreign manifest: export without persona texts rather than fail
        notes.append(f"persona texts could not be rebuilt from the stored spec and personas ({type(exc).__name__}: {exc}); the persona columns are null.")
        return pl.DataFrame(schema=schema)

    plan = Plan()
    out: dict[str, list] = {name: [] for name in schema}
    unverified = 0
    for r in judgments.iter_rows(named=True):
        texts = versions.get((r["attribute"], r["persona_id"]))
        with_text = without_text = None
        if texts is not None and r["question"] is not None:
            base, refined = add_refinement(plan, ctx, params, r["question"], texts[1])
            order = {"response_a": refined, "response_b": base} if r["refined_is_a"] else {"response_a": base, "response_b": refined}
            judge = {"question": r["question"]}
            if add_call(plan, ctx, "judge", "judge", params.judge_template, {**judge, "persona": texts[1]}, order, parser="choice") == r["judge_with_key"]:
                with_text = texts[1]
            if add_call(plan, ctx, "judge", "judge", params.judge_template, {**judge, "persona": texts[0]}, order, parser="choice") == r["judge_without_key"]:
                without_text = texts[0]
        unverified += with_text is None
        for name, v in zip(schema, (r["attribute"], r["persona_id"], r["question_id"], with_text, without_text)):
            out[name].append(v)
    if unverified:
        notes.append(f"{unverified} of {judgments.height} persona texts could not be rebuilt exactly (the rebuilt judge call does not have the "
                     "stored key, e.g. a run made by an older version); their persona columns are null.")
    return pl.DataFrame(out, schema=schema)


def _dpf(info: RunInfo, tables: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[str]]:
    _need(info, tables, "preferences")
    prefs = tables["preferences"]
    judgments = prefs.filter(pl.col("persona_prefers_chosen").is_not_null()).select("persona_id", "split", "prompt_id", "persona_prefers_chosen")
    notes = [] if judgments.height else ["the run did not verify its pairs (experiment.verify is false): the judgments table is empty."]
    return {"pairs": prefs, "judgments": judgments}, notes


def _wikipersona(info: RunInfo, tables: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], list[str]]:
    _need(info, tables, "preferences", "wikipersona_matches", "calls")
    answers = _answers(tables["calls"])
    judgments = (
        tables["wikipersona_matches"]
        .join(answers.rename({"key": "first_key", "answer": "first"}), on="first_key", how="left")
        .join(answers.rename({"key": "second_key", "answer": "second"}), on="second_key", how="left")
        .select("persona_id", "question_id", "round", "first", "second", "first_is_a", "first_won", "first_key", "second_key", "judge_key")
    )
    return {"pairs": tables["preferences"], "judgments": judgments}, []


# --------------------------------------------------------------------------- writing


def export_run(info: RunInfo, fmt: str, output: str | Path | None = None, table: str = "pairs",
               persona_split: str | None = None) -> tuple[list[Path], list[str]]:
    """Writes ``table`` of the run as ``fmt`` (jsonl or parquet: one file), or
    both tables as a ``datasets`` folder (hf). ``persona_split`` keeps only the
    rows of the train or test personas (a DPF run with experiment.persona_split).
    Returns the paths written and notes."""
    if fmt not in FORMATS:
        raise DataError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if table not in TABLES:
        raise DataError(f"unknown table {table!r}; use one of {', '.join(TABLES)}.")
    frames, notes = export_tables(info)
    if persona_split is not None:
        frames = _of_persona_split(info, frames, persona_split)
    if fmt == "hf":
        folder = Path(output) if output else Path(f"{info.experiment}-{info.run_id}-hf")
        return _write_hf(info, frames, folder, notes), notes
    path = Path(output) if output else Path(f"{info.experiment}-{info.run_id}-{table}.{fmt}")
    if path.is_dir():
        path = path / f"{info.experiment}-{info.run_id}-{table}.{fmt}"
    _check_parent(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frames[table].write_ndjson(tmp) if fmt == "jsonl" else frames[table].write_parquet(tmp)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {path} ({exc.strerror or exc}).") from None
    return [path], notes


def _of_persona_split(info: RunInfo, frames: dict[str, pl.DataFrame], which: str) -> dict[str, pl.DataFrame]:
    """The rows of one persona split: a table with a persona_split column is
    filtered by it, one with persona_id by the ids the split holds."""
    have = {k: f for k, f in frames.items() if "persona_split" in f.columns}
    ids = {pid for f in have.values() for pid, s in f.select("persona_id", "persona_split").iter_rows() if s == which}
    if not ids:
        raise DataError(f"--persona-split {which}: run {info.experiment}/{info.run_id} has no {which} personas, so it has no persona split "
                        "(set experiment.persona_split in a DPF spec to hold personas out).")
    return {k: f.filter(pl.col("persona_split") == which) if "persona_split" in f.columns
            else f.filter(pl.col("persona_id").is_in(list(ids))) if "persona_id" in f.columns else f
            for k, f in frames.items()}


def _check_parent(path: Path) -> None:
    if not path.parent.exists():
        raise DataError(f"cannot write {path}: folder {path.parent} does not exist.")


def _write_hf(info: RunInfo, frames: dict[str, pl.DataFrame], folder: Path, notes: list[str]) -> list[Path]:
    _check_parent(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"cannot write the dataset folder {folder}: a file of that name exists.")
    text = _card(info, frames, notes)  # composed before anything is written: no half-written folder
    folder.mkdir(exist_ok=True)
    written = []
    try:
        for name in TABLES:
            path = folder / f"{name}.parquet"
            frames[name].write_parquet(path)
            written.append(path)
        card = folder / "README.md"
        card.write_text(text, encoding="utf-8")
        written.append(card)
    except OSError as exc:
        raise DataError(f"cannot write the dataset folder {folder} ({exc.strerror or exc}).") from None
    return written


COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    "loo": {
        "pairs": {
            "prompt": "the question",
            "chosen": "the answer the judge role-playing the persona with the attribute preferred",
            "rejected": "the other answer",
            "persona": "the persona text that judge role-played (k other attributes plus the attribute); null when it could not be rebuilt exactly",
            "persona_without": "the same persona without the attribute",
            "persona_id": "the persona",
            "attribute": "the attribute left out and added back",
            "attribute_value": "the persona's value of that attribute",
            "question_id": "the question",
            "chosen_is_refined": "true when the chosen answer is the persona-refined one (critique + revision), false for the plain answer",
            "without_agrees": "true when the judge without the attribute chose the same answer, false when the attribute flipped the choice",
        },
        "judgments": {
            "attribute": "the attribute left out and added back",
            "persona_id": "the persona",
            "question_id": "the question",
            "question": "the question text",
            "refined_is_a": "the persona-refined answer was shown as response A",
            "prefers_refined_without": "the judge role-playing the persona without the attribute preferred the refined answer (null = missing)",
            "prefers_refined_with": "the same with the attribute (null = missing)",
            "agree": "both judges chose the same answer",
            "base_key": "call key of the plain answer",
            "revise_key": "call key of the refined answer",
            "judge_without_key": "call key of the judgment without the attribute",
            "judge_with_key": "call key of the judgment with the attribute",
        },
    },
    "dpf": {
        "pairs": {
            "persona_id": "the persona",
            "split": "train, test_seen or test_heldout",
            "prompt_id": "the prompt",
            "topic": "the prompt's topic (splits are by topic)",
            "prompt": "the prompt text",
            "persona": "the persona text the critique and revision were written for",
            "chosen": "the revision tailored to the persona",
            "rejected": "the plain answer",
            "persona_prefers_chosen": "1 when the judge role-playing the persona preferred the revision, 0 when not, null when not verified",
        },
        "judgments": {
            "persona_id": "the persona",
            "split": "the split of the pair",
            "prompt_id": "the prompt",
            "persona_prefers_chosen": "1 when the judge role-playing the persona preferred the revision, 0 when not",
        },
    },
    "wikipersona": {
        "pairs": {
            "persona_id": "the persona (axis:name)",
            "name": "the famous person",
            "axis": "the axis the person was chosen for",
            "category": "the person's category on that axis",
            "question_type": "personal (asked by this person) or divergent (asked in common by the axis)",
            "question_id": "the question",
            "prompt": "the question text",
            "chosen": "the candidate that won the person's single-elimination bracket",
            "rejected": "another candidate of the bracket (seeded choice among the losers)",
            "split": "train (the test questions serve the prefix comparison)",
        },
        "judgments": {
            "persona_id": "the persona",
            "question_id": "the question",
            "round": "bracket round (1 = first round)",
            "first": "one candidate's text",
            "second": "the other candidate's text",
            "first_is_a": "the first candidate was shown as output (a)",
            "first_won": "the judge role-playing the person preferred the first candidate (null = no verdict)",
            "first_key": "call key of the first candidate",
            "second_key": "call key of the second candidate",
            "judge_key": "call key of the judgment",
        },
    },
}


SIMULATED_COLUMN = "true when the run's answers or judgments came from persona-exp's offline simulator (sim/... models), not a real model"
for _tables in COLUMNS.values():
    for _cols in _tables.values():
        _cols["simulated"] = SIMULATED_COLUMN


def _card(info: RunInfo, frames: dict[str, pl.DataFrame], notes: list[str]) -> str:
    """A short dataset card: YAML front matter naming the two configs (pairs is
    the default), then what the data is and where it comes from."""
    from persona_exp import __version__

    m = info.manifest
    kind = m.get("kind")
    models = {role: cfg.get("model") for role, cfg in m.get("models", {}).items()}
    simulated = is_simulated(m)
    front = [
        "---",
        "configs:",
        "- config_name: pairs",
        "  data_files:",
        "  - split: train",
        "    path: pairs.parquet",
        "  default: true",
        "- config_name: judgments",
        "  data_files:",
        "  - split: train",
        "    path: judgments.parquet",
        f"simulated: {'true' if simulated else 'false'}",
        "tags:",
        "- preference",
        "- persona",
        "- synthetic",
        *(["- simulated"] if simulated else []),
        "---",
        "",
    ]
    what = {
        "loo": "Leave-one-out attribute influence (PERSONA section 4.1): a judge role-plays each persona with and without one attribute "
               "and picks the better of a plain answer and a persona-refined one. `pairs` holds the with-attribute judge's choices as "
               "preference pairs (chosen / rejected); `judgments` every judgment of both versions.",
        "dpf": "Preference pairs by Direct Principle Feedback (PERSONA section 3.2): chosen = the persona-tailored revision, rejected = the "
               "plain answer. `judgments` holds the role-playing judge's verification of each pair. The experiment's own split "
               "(train, test_seen, test_heldout) is the `split` column; the dataset has one split, `train`, holding every row.",
        "wikipersona": "Personal preference pairs for famous people (WikiPersonas section 3.3): for each person and generated question, diverse "
                       "chain-of-thought candidates, and the personal judge's single-elimination winner as chosen against another candidate as "
                       "rejected. `judgments` holds every comparison of the brackets.",
    }[kind]
    lines = [
        f"# {m.get('experiment')} / {info.run_id}",
        "",
        what,
        "",
        f"- pairs: {frames['pairs'].height:,} rows; judgments: {frames['judgments'].height:,} rows",
        f"- experiment kind: {kind}; created {m.get('created')}; seed {m.get('seed')}",
        f"- models: {', '.join(f'{r}: {v}' for r, v in models.items())}",
        f"- spec hash {m.get('spec_hash')}, plan hash {m.get('plan_hash')}",
        f"- run with persona-exp {m.get('versions', {}).get('persona_exp', '?')}, exported with persona-exp {__version__}",
        "",
        "Load with `datasets.load_dataset(\"path/to/this/folder\")` (pairs) or `load_dataset(\"path/to/this/folder\", \"judgments\")`.",
        "",
    ]
    if simulated:
        lines[1:1] = ["", "**SIMULATED.** The answers and judgments come from persona-exp's offline simulator (`sim/...` models; roles: "
                      f"{', '.join(m.get('simulated_roles') or simulated_roles(models))}): this data "
                      "exercises a pipeline and says nothing about any real model or person. Every row has `simulated` = true."]
    for name, cols in COLUMNS.get(kind, {}).items():
        present = set(frames[name].columns)
        lines += [f"## Columns of `{name}`", ""] + [f"- `{c}`: {d}" for c, d in cols.items() if c in present] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Provenance", "", "```json", json.dumps({"experiment": m.get("experiment"), "run_id": info.run_id, "kind": kind,
                                                          "spec_hash": m.get("spec_hash"), "plan_hash": m.get("plan_hash"),
                                                          "population": {"key": m.get("population", {}).get("key"), "size": m.get("population", {}).get("size")}},
                                                         indent=2), "```", ""]
    return "\n".join(front + lines)
