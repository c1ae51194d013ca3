"""persona-exp: declarative, cached, diffable experiments on how well language
models serve different people (PERSONA and WikiPersonas style).

The statistics core lives in :mod:`persona_exp.stats`; errors in
:mod:`persona_exp.errors`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("persona-exp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

__all__ = ["__version__"]
