"""File paths inside a spec, resolved once, right after loading.

A spec names its input files (PUMS files, a famous-person file, a prompt file,
human annotations) relative to its own folder, so a project folder works from
wherever it is run: ``persona-exp run experiments/loo.yaml`` and
``cd experiments && persona-exp run loo.yaml`` read the same files. A path given
with ``--set`` on the command line is relative to the working directory, as a
shell user expects. Absolute paths (and ``~``) are kept. After resolving, the
rest of the code sees absolute paths only.

Where results go (``output.dir``, ``output.cache``) is not an input: it stays
relative to the working directory, where every other command looks by default.

Call keys and the plan key do not change with this: a call's key is its rendered
messages, and file inputs enter them through their content, never their path.
(The file name of a stored procedural population does include the absolute
path, so a project moved elsewhere rebuilds it once, with the same personas.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from persona_exp.errors import SpecError

# The spec fields that name an input file, with the values that are not paths.
INPUT_FILES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("population", "persons"): (),
    ("population", "housing"): (),
    ("population", "dictionary"): (),
    ("population", "people"): (),
    ("population", "path"): (),
    ("prompts", "source"): ("default",),
    ("experiment", "human"): (),
}


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _get(model: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        model = getattr(model, part, None)
    return model


def _replace(model: BaseModel, path: tuple[str, ...], value: Any) -> BaseModel:
    """A copy of ``model`` with the field at ``path`` set (the models are frozen)."""
    head, rest = path[0], path[1:]
    new = value if not rest else _replace(getattr(model, head), rest, value)
    return model.model_copy(update={head: new})


def from_command_line(loc: Any, path: tuple[str, ...]) -> bool:
    """Whether a ``--set`` item gave this field (or a block holding it)."""
    return any(path[:cut] in loc.overridden for cut in range(1, len(path) + 1))


def resolve_input_files(spec: BaseModel, loc: Any, spec_file: str | Path) -> BaseModel:
    """``spec`` with every input file path made absolute: relative to the folder
    of ``spec_file``, or to the working directory when given with ``--set``.
    A file that is not there is a SpecError at the field's line."""
    spec_dir = Path(os.path.abspath(spec_file)).parent
    for path, keywords in INPUT_FILES.items():
        raw = _get(spec, path)
        if not isinstance(raw, str) or raw in keywords:
            continue
        given = Path(raw).expanduser()
        typed = from_command_line(loc, path)
        resolved = Path(os.path.normpath((Path.cwd() if typed else spec_dir) / given))
        if not resolved.is_file():
            what = "is a folder, not a file" if resolved.is_dir() else "does not exist"
            if given.is_absolute():
                how = ""
            elif typed:
                how = f" (read as {resolved}: a relative path given with --set is read from the working directory)"
            else:
                how = f" (read as {resolved}: a relative path in a spec is read from the spec file's folder)"
            fix = "fix the path" if given.is_absolute() else "fix the path, or give an absolute one"
            raise SpecError(f"{loc.where(path)}: {_dotted(path)}: the file {raw} {what}{how}; {fix}.")
        spec = _replace(spec, path, str(resolved))
    return spec
