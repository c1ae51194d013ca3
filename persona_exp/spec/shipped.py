"""The example specs that ship with the package (the top-level experiments/
folder of the source tree), found the same way in a wheel and in an editable
install.

``persona_exp/shipped_experiments`` is a symbolic link to ``../experiments``:
an editable install reads the specs through it, and the wheel build copies
the files it points at (pyproject.toml, ``[tool.maturin] include``), so there
is one copy of each spec to maintain.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from persona_exp.errors import DataError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

FOLDER = "shipped_experiments"


def shipped_specs() -> dict[str, Traversable]:
    """The shipped specs by file name (``loo.yaml``...), sorted by name."""
    folder = resources.files("persona_exp").joinpath(FOLDER)
    if not folder.is_dir():
        raise DataError(
            f"the example specs are missing from this installation of persona-exp (no persona_exp/{FOLDER}); "
            "reinstall the package, or take them from the experiments/ folder of its source."
        )
    found = {item.name: item for item in folder.iterdir() if item.name.endswith((".yaml", ".yml")) and item.is_file()}
    return dict(sorted(found.items()))
