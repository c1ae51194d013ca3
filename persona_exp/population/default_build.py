"""Build the embedded default population from the Census Bureau's PUMS files.

    python -m persona_exp.population.default_build [SHARED_DATA_DIR] [--out DIR]

reads the 2018 ACS 1-year PUMS person files of twelve states (``pums2018/``
and ``csv_pwy.zip`` under ``SHARED_DATA_DIR``, default ``../shared/data``),
rakes their person weights to the national control totals of
:func:`persona_exp.population.profile.controls` with the Rust core's
:func:`persona_exp.stats.rake`, and writes ``default_persons.parquet`` (the raw
codes the census attributes need, the Bureau's weight and the calibrated
weight, in the smallest integer types, zstd) and ``default_persons.json`` (what
was read, how it was calibrated, and the joint structure of the seed as the
census files give it) to the package's ``population/data/`` folder or ``--out``.

The build is deterministic: the same files give the same bytes, so a rebuild
can be checked against the shipped file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

from persona_exp import stats
from persona_exp.census.decode import unmapped_codes
from persona_exp.census.dictionary import embedded
from persona_exp.census.pums import read_pums
from persona_exp.errors import DataError, PersonaExpError
from persona_exp.population.attributes import PERSON_VARIABLES
from persona_exp.population.profile import (
    ABOUT_FILE,
    DEFAULT_FILE,
    EXTRA_VARIABLES,
    WEIGHT,
    census_profile,
    controls,
    joint_structure,
)

__all__ = ["SEED_FILES", "TOLERANCE", "MAX_ITERATIONS", "build", "census_frame", "main", "read_seed", "seed_paths"]

# The twelve states' person files, in state-code order (the Bureau's file names).
SEED_FILES: tuple[str, ...] = (
    "pums2018/csv_pde.zip", "pums2018/csv_phi.zip", "pums2018/csv_pid.zip", "pums2018/csv_pme.zip",
    "pums2018/csv_pmt.zip", "pums2018/csv_pne.zip", "pums2018/csv_pnh.zip", "pums2018/csv_pnm.zip",
    "pums2018/csv_pri.zip", "pums2018/csv_psd.zip", "pums2018/csv_pwv.zip", "csv_pwy.zip",
)  # fmt: skip
TOLERANCE = 1e-9  # largest relative error of any control category
MAX_ITERATIONS = 1000
DEFAULT_SHARED = Path("..") / "shared" / "data"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def seed_paths(shared: Path) -> list[Path]:
    """The twelve seed files under ``shared``; a missing one is an error naming it."""
    paths = [Path(shared) / f for f in SEED_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"the default population is built from twelve ACS 2018 PUMS person files; missing: {', '.join(missing)}. "
            "Pass the folder that holds pums2018/ and csv_pwy.zip."
        )
    return paths


def _read(path: Path) -> pl.DataFrame:
    frame = read_pums(path, columns=[*PERSON_VARIABLES, *EXTRA_VARIABLES]).frame
    found = unmapped_codes(frame, embedded(), columns=list(PERSON_VARIABLES))
    if found:
        shown = "; ".join(f"{var}: {', '.join(repr(c) for c in list(codes)[:5])}" for var, codes in found.items())
        raise DataError(f"{path} has codes without a label in the embedded 2018 tables: {shown}.")
    return frame


def read_seed(shared: Path) -> pl.DataFrame:
    """The seed's person records, raw codes as ``read_pums`` gives them (every
    code labelled), file after file in the order of :data:`SEED_FILES`."""
    return pl.concat([_read(p) for p in seed_paths(shared)], how="vertical")


def census_frame(shared: Path) -> pl.DataFrame:
    """The seed as the PUMS path reads it (``source_frame`` of each person file,
    Bureau weights): what the census joint structure is measured on."""
    from persona_exp.population.build import PopulationSpec, source_frame

    return pl.concat([source_frame(PopulationSpec(persons=str(p)))[0] for p in seed_paths(shared)], how="vertical")


def _compact(records: pl.DataFrame, weights: np.ndarray) -> pl.DataFrame:
    """The columns to ship in the smallest types: character codes (all digits)
    as unsigned integers, ages and incomes as integers, the calibrated weight
    as float32 (7 significant digits, far finer than the controls)."""
    codes = embedded()
    out = []
    for name in (*PERSON_VARIABLES, *EXTRA_VARIABLES, "PWGTP"):
        col = records[name]
        var = codes.get(name)
        if var is not None and var.numeric:
            lo, hi = col.min(), col.max()
            dtype = pl.UInt8 if lo >= 0 and hi < 2**8 else pl.UInt16 if lo >= 0 and hi < 2**16 else pl.Int32
            out.append(col.cast(dtype))
            continue
        try:
            number = col.cast(pl.UInt32, strict=True)
        except pl.exceptions.InvalidOperationError:
            raise DataError(f"{name} holds a code that is not all digits; the compact file stores codes as integers.") from None
        top = number.max() or 0
        out.append(number.cast(pl.UInt8 if top < 2**8 else pl.UInt16 if top < 2**16 else pl.UInt32))
    out.append(pl.Series(WEIGHT, weights, dtype=pl.Float32))
    return pl.DataFrame(out)


def build(shared: Path, out: Path = PACKAGE_DATA) -> dict:
    """Read, calibrate and write the default population; returns the build record."""
    shared = Path(shared)
    paths = seed_paths(shared)
    parts = [_read(p) for p in paths]
    records = pl.concat(parts, how="vertical")
    initial = records["PWGTP"].to_numpy().astype(np.float64)
    margins = [(c.categories(records), c.targets) for c in controls()]
    raked = stats.rake(initial, margins, tolerance=TOLERANCE, max_iterations=MAX_ITERATIONS)
    if not raked.converged:
        raise DataError(
            f"raking did not converge in {raked.iterations} sweeps (largest relative error {raked.max_rel_error:.3g}): "
            "the control margins contradict each other for this seed; merge sparse categories in population/profile.py."
        )
    w = raked.weights
    ratio = w / initial
    profile = census_profile()
    states, start = [], 0
    for path, part in zip(paths, parts):
        rows = slice(start, start + part.height)
        start += part.height
        states.append({
            "file": path.name, "state": embedded()["ST"].labels[part["ST"][0]].split("/")[0], "records": part.height,
            "persons_represented": int(initial[rows].sum()), "calibrated_share": round(float(w[rows].sum() / w.sum()), 4),
        })
    about = {
        "what": "ACS 2018 1-year PUMS person records of twelve states, raked to national ACS control totals: "
                "the embedded default population (see data/README.md)",
        "seed": {
            "source": "U.S. Census Bureau, American Community Survey 2018 1-year Public Use Microdata Sample, person files",
            "year": 2018, "records": records.height, "states": states,
        },
        "controls": {
            "source": profile["about"], "year": "2017 1-year",
            "margins": [{"name": c.name, "table": c.table, "title": c.title, "categories": len(c.labels),
                         "total": float(c.targets.sum())} for c in controls()],
        },
        "raking": {
            "method": "raking (iterative proportional fitting), persona_exp.stats.rake in the Rust core",
            "initial_weights": "PWGTP", "tolerance": TOLERANCE, "max_iterations": MAX_ITERATIONS,
            "iterations": raked.iterations, "max_rel_error": raked.max_rel_error, "converged": raked.converged,
            "target_scales": list(raked.scales),
        },
        "weights": {
            "calibrated_over_bureau_min": round(float(ratio.min()), 3), "median": round(float(np.median(ratio)), 3),
            "max": round(float(ratio.max()), 3),
            "kish_effective_records": round(float(w.sum() ** 2 / (w**2).sum())),
            "kish_effective_records_bureau": round(float(initial.sum() ** 2 / (initial**2).sum())),
        },
        "census_joint_structure": joint_structure(census_frame(shared), weight="weight"),
        "columns": [*PERSON_VARIABLES, *EXTRA_VARIABLES, "PWGTP", WEIGHT],
        "build": "python -m persona_exp.population.default_build ../shared/data",
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _compact(records, w).write_parquet(out / DEFAULT_FILE, compression="zstd", compression_level=19, statistics=False)
    (out / ABOUT_FILE).write_text(json.dumps(about, indent=1) + "\n", encoding="utf-8")
    return about


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persona_exp.population.default_build", description=__doc__.split("\n\n")[0])
    parser.add_argument("shared", nargs="?", default=str(DEFAULT_SHARED), help="folder holding pums2018/ and csv_pwy.zip (default ../shared/data)")
    parser.add_argument("--out", default=str(PACKAGE_DATA), help="where to write the parquet and its JSON record (default: the package's data folder)")
    args = parser.parse_args(argv)
    try:
        about = build(Path(args.shared), Path(args.out))
    except PersonaExpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = (Path(args.out) / DEFAULT_FILE).stat().st_size
    r = about["raking"]
    print(f"{about['seed']['records']:,} records of {len(about['seed']['states'])} states raked in {r['iterations']} sweeps "
          f"(largest relative error {r['max_rel_error']:.2g}); wrote {Path(args.out) / DEFAULT_FILE} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
