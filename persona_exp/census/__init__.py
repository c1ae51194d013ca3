"""Reading ACS PUMS census microdata: the data dictionary, person and housing files, value labels.

``dictionary`` parses the Bureau's data dictionary (or loads the embedded 2018
tables), ``pums`` reads person and housing files (CSV or the Bureau's zips)
lazily with typed columns and joins them, ``decode`` turns codes into labels.
"""

from __future__ import annotations

from persona_exp.census.dictionary import (
    EMBEDDED_VARIABLES,
    DataDictionary,
    Variable,
    embedded,
    read_dictionary,
)

__all__ = ["EMBEDDED_VARIABLES", "DataDictionary", "Variable", "embedded", "read_dictionary"]
