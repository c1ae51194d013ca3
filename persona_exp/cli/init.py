"""`persona-exp init [DIR]`: copy the shipped example specs into DIR/experiments/.

With only the package installed (no source checkout), this gives a folder where
`persona-exp run experiments/loo.yaml` works, plus a README that says what each
spec does and which commands to try.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import yaml

README = "README.md"
EXAMPLE = "loo.yaml"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="copy the example specs into DIR/experiments/ (with a README) to start a project",
                       description="Copy the example specs that ship with persona-exp into DIR/experiments/, with a short README.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: the working directory)")
    p.add_argument("--force", action="store_true", help="overwrite the specs and README of the same names (other files are left alone)")
    p.set_defaults(handler=main)


def _describe(text: str) -> str:
    """The spec's own ``description`` (one line), so the README never drifts from it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    return " ".join(str(data.get("description") or "").split()) if isinstance(data, dict) else ""


def _example(specs: dict[str, str]) -> str:
    """The spec the README and the closing hint use: the main job, leave-one-out."""
    return EXAMPLE if EXAMPLE in specs else next(iter(specs))


def readme(specs: dict[str, str]) -> str:
    """The README stub for the copied specs (file name -> text)."""
    example = f"experiments/{_example(specs)}"
    rows = "\n".join(f"| `experiments/{name}` | {_describe(text)} |" for name, text in specs.items())
    commands = [
        (f"persona-exp plan {example}", "calls per step, cached vs to run, estimated cost"),
        (f"persona-exp run {example}", "runs what is not cached, stores the run"),
        (f"persona-exp run {example} --set experiment.n_personas=10", "a field changed for one run"),
        ("persona-exp runs", "the stored runs"),
        ("persona-exp diff latest~1 latest", "what changed between the last two runs, with CIs"),
        ("persona-exp report latest -o report.html", "one self-contained HTML report with plots"),
    ]
    width = max(len(c) for c, _ in commands) + 2
    block = "\n".join(f"{c:<{width}}# {why}" for c, why in commands)
    return f"""# Experiments

Example specs of persona-exp, copied by `persona-exp init`. Each YAML file documents itself in its
comments; edit them, or copy one to start a new experiment.

| spec | what it does |
|---|---|
{rows}

Run the commands from the folder that holds `experiments/`: runs and the call cache go to
`.persona-exp/` in the working directory, while a file named inside a spec (a PUMS file, a prompt
file...) is read relative to the spec's own folder.

```sh
{block}
```
"""


def main(args: argparse.Namespace) -> int:
    from persona_exp.errors import InvalidArgumentError
    from persona_exp.spec.shipped import shipped_specs

    root = Path(args.dir)
    folder = root / "experiments"
    for p in (root, folder):
        if p.exists() and not p.is_dir():
            raise InvalidArgumentError(f"persona-exp init {args.dir}: {p} is a file, not a folder; choose another folder for the project.")
    specs = {name: item.read_text(encoding="utf-8") for name, item in shipped_specs().items()}
    files = {folder / name: text for name, text in specs.items()}
    files[folder / README] = readme(specs)
    existing = [str(p) for p in files if p.exists()]
    if existing and not args.force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise InvalidArgumentError(
            f"persona-exp init {args.dir}: {shown} already exist{'s' if len(existing) == 1 else ''}; nothing was written. "
            "Pass --force to overwrite them with the shipped versions, or choose another folder (persona-exp init DIR)."
        )
    folder.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"{'overwrote' if str(path) in existing else 'wrote'} {path}")
    where = "" if root == Path(".") else f"cd {shlex.quote(str(root))} && "
    print(f"next: {where}persona-exp run experiments/{_example(specs)}   (see {folder / README} for more)")
    return 0
