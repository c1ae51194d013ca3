"""Regenerate the embedded code tables (``codes_YYYY.json``) from the Bureau's dictionary.

The package decodes PUMS files without a dictionary file by shipping the value
labels of the variables persona-exp uses (``EMBEDDED_VARIABLES``). They are
public facts copied from the Census Bureau's data dictionary; this script is
how they were copied, so the JSON never has to be edited by hand::

    python -m persona_exp.census._build_codes PUMS_Data_Dictionary_2018.csv

writes ``persona_exp/census/codes_2018.json`` (the year is taken from the
file name, or give ``--year``; ``--output`` writes elsewhere). The output is
deterministic (variables in ``EMBEDDED_VARIABLES`` order, values in dictionary
order, one variable per line) so a regenerated file diffs cleanly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from persona_exp.census.dictionary import EMBEDDED_VARIABLES, DataDictionary, read_dictionary


def to_json(dictionary: DataDictionary, year: int, names: tuple[str, ...] = EMBEDDED_VARIABLES) -> str:
    """The compact JSON text of ``names`` (those the dictionary has)."""
    lines = []
    for name in names:
        v = dictionary.get(name)
        if v is None:
            continue
        spec = {
            "type": v.type,
            "width": v.width,
            "records": "".join(sorted(v.records)),
            "description": v.description,
            "values": v.values(),
        }
        lines.append(f"{json.dumps(name)}: {json.dumps(spec, ensure_ascii=True, separators=(',', ':'))}")
    head = {
        "year": year,
        "source": f"US Census Bureau, ACS PUMS data dictionary {year} (PUMS_Data_Dictionary_{year}.csv)",
        "regenerate": f"python -m persona_exp.census._build_codes PUMS_Data_Dictionary_{year}.csv",
    }
    head_text = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items())
    return "{\n" + head_text + ',\n"variables": {\n' + ",\n".join(lines) + "\n}\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dictionary", type=Path, help="the Bureau's PUMS_Data_Dictionary_YYYY.csv")
    parser.add_argument("--year", type=int, help="survey year (default: from the file name)")
    parser.add_argument("--output", type=Path, help="output file (default: codes_YYYY.json next to this script)")
    args = parser.parse_args(argv)

    year = args.year
    if year is None:
        m = re.search(r"(19|20)\d\d", args.dictionary.name)
        if not m:
            parser.error("cannot tell the year from the file name; pass --year")
        year = int(m.group(0))
    dictionary = read_dictionary(args.dictionary)
    missing = [n for n in EMBEDDED_VARIABLES if n not in dictionary]
    if missing:
        print(f"not in {args.dictionary}: {', '.join(missing)} (left out)", file=sys.stderr)
    output = args.output or Path(__file__).with_name(f"codes_{year}.json")
    output.write_text(to_json(dictionary, year), encoding="utf-8")
    print(f"wrote {output} ({len(EMBEDDED_VARIABLES) - len(missing)} variables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
