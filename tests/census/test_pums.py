"""Reading PUMS person and housing files and joining them, against the real 2018 files."""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections import Counter

import polars as pl
import pytest

from persona_exp.census import pums
from persona_exp.census.pums import (
    MATCH_COLUMN,
    join_housing,
    read_pums,
    scan_housing,
    scan_persons,
    weighted_counts,
    weighted_total,
)
from persona_exp.errors import DataError


def _raw(value: str, numeric: bool):
    if value == "":
        return None
    return int(value) if numeric else value


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------- persons


def test_only_the_requested_columns_are_read(person_zip, cache_dir):
    lf = scan_persons(person_zip, ["SEX", "AGEP", "SCHL"], cache_dir=cache_dir)
    assert isinstance(lf, pl.LazyFrame)
    assert "PROJECT 6/286 COLUMNS" in lf.explain()  # the scan itself parses 6 of 286 columns
    df = lf.collect()
    assert df.columns == ["SERIALNO", "SPORDER", "PWGTP", "SEX", "AGEP", "SCHL"]
    assert df.schema == {
        "SERIALNO": pl.String, "SPORDER": pl.Int64, "PWGTP": pl.Int64,
        "SEX": pl.String, "AGEP": pl.Int64, "SCHL": pl.String,
    }  # fmt: skip
    assert df.height == 5740


def test_default_columns_are_the_listed_person_variables(person_zip, cache_dir, census):
    df = scan_persons(person_zip, cache_dir=cache_dir).collect()
    expected = [v for v in census.LISTED if v not in census.HOUSING_VARS]
    assert df.columns[:3] == ["SERIALNO", "SPORDER", "PWGTP"]
    assert sorted(df.columns[3:]) == sorted(expected)
    for name in census.NUMERIC:
        assert df.schema[name] == pl.Int64


def test_weighted_total_equals_the_csv_module(person_zip, cache_dir, raw_persons):
    df = scan_persons(person_zip, ["SEX"], cache_dir=cache_dir).collect()
    expected = sum(int(r["PWGTP"]) for r in raw_persons)
    assert weighted_total(df) == expected == 577737
    assert weighted_total(df.lazy()) == expected
    by_sex: Counter[str] = Counter()
    for r in raw_persons:
        by_sex[r["SEX"]] += int(r["PWGTP"])
    counts = weighted_counts(df, "SEX")
    assert dict(zip(counts["SEX"], counts["weight"])) == dict(by_sex)
    assert counts["rows"].sum() == len(raw_persons)


def test_values_equal_the_raw_csv(person_zip, cache_dir, raw_persons, census):
    df = scan_persons(person_zip, cache_dir=cache_dir).collect()
    numeric = {c for c, t in df.schema.items() if t == pl.Int64}
    assert numeric == {"SPORDER", "PWGTP", *census.NUMERIC}
    for column in df.columns:
        expected = [_raw(r[column], column in numeric) for r in raw_persons]
        assert df[column].to_list() == expected, column
    # codes keep their leading zeros; SERIALNO stays a string
    assert "01" in set(df["SCHL"]) and df["SERIALNO"][0].startswith("2018GQ")


def test_csv_and_zip_give_the_same_frame(person_zip, cache_dir, tmp_path):
    with zipfile.ZipFile(person_zip) as zf:
        zf.extract("psam_p56.csv", tmp_path)
    from_csv = scan_persons(tmp_path / "psam_p56.csv", ["SCHL", "PINCP"]).collect()
    from_zip = scan_persons(person_zip, ["SCHL", "PINCP"], cache_dir=cache_dir).collect()
    assert from_csv.equals(from_zip)


def test_zip_member_is_extracted_once(person_zip, tmp_path):
    cache = tmp_path / "cache"
    scan_persons(person_zip, ["SEX"], cache_dir=cache).collect()
    files = sorted(cache.iterdir())
    assert [f.name for f in files] == [files[0].name] and files[0].name.startswith("psam_p56-")
    stamp = files[0].stat().st_mtime_ns
    scan_persons(person_zip, ["AGEP"], cache_dir=cache).collect()
    assert sorted(cache.iterdir()) == files and files[0].stat().st_mtime_ns == stamp


def test_file_columns_reads_the_header_without_extracting(person_zip, housing_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pums.default_cache_dir() == tmp_path / "xdg" / "persona-exp" / "pums"
    header = pums.file_columns(person_zip)
    assert len(header) == 286 and header[:4] == ["RT", "SERIALNO", "DIVISION", "SPORDER"]
    assert {"HHL", "HHT", "HUPAC", "WGTP"} <= set(pums.file_columns(housing_zip, "housing"))
    assert not (tmp_path / "xdg").exists()


def test_split_national_zip_members_are_concatenated(person_zip, tmp_path, raw_persons):
    with zipfile.ZipFile(person_zip) as zf:
        lines = zf.read("psam_p56.csv").decode().splitlines(keepends=True)
    split = tmp_path / "csv_pus.zip"
    with zipfile.ZipFile(split, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("psam_pusa.csv", "".join(lines[:3001]))
        zf.writestr("psam_pusb.csv", "".join(lines[:1] + lines[3001:]))
        zf.writestr("ACS2018_PUMS_README.pdf", b"%PDF")
    df = scan_persons(split, ["SEX"], cache_dir=tmp_path / "cache").collect()
    assert df["SERIALNO"].to_list() == [r["SERIALNO"] for r in raw_persons]
    assert weighted_total(df) == 577737


# --------------------------------------------------------------------------- housing and the join


def test_housing_file_columns_and_weights(housing_zip, cache_dir, raw_housing):
    df = scan_housing(housing_zip, cache_dir=cache_dir).collect()
    assert df.columns == ["SERIALNO", "WGTP", "HHL", "HHT", "HUPAC"]
    assert df.schema["WGTP"] == pl.Int64 and df.schema["HHL"] == pl.String
    assert df.height == 3713
    assert weighted_total(df, "WGTP") == sum(int(r["WGTP"]) for r in raw_housing)
    # group quarters have housing rows: WGTP 0, blank household variables
    gq = df.filter(pl.col("SERIALNO").str.contains("GQ"))
    assert gq.height == sum("GQ" in r["SERIALNO"] for r in raw_housing) > 0
    assert gq["WGTP"].max() == 0 and gq["HHL"].null_count() == gq.height


def test_join_gives_the_raw_housing_values(housing_zip, cache_dir, raw_housing, tmp_path):
    gq = next(r for r in raw_housing if "GQ" in r["SERIALNO"])
    households = [r for r in raw_housing if r["SERIALNO"].startswith("2018HU") and r["HHL"] != ""]
    picked = [households[0], next(r for r in households if r["HHL"] != "1"), next(r for r in households if r["HUPAC"] not in ("", "4"))]
    vacant = next(r for r in raw_housing if r["SERIALNO"].startswith("2018HU") and r["HHL"] == "")
    # persons in the Bureau's layout (a few of its columns), with real SERIALNOs from psam_h02.csv
    rows, expected = [], []
    for house, n in [(picked[0], 3), (gq, 1), (picked[1], 2), (vacant, 1), (picked[2], 1)]:
        for sporder in range(1, n + 1):
            rows.append(["P", house["SERIALNO"], sporder, "02", 50 + sporder, 30 + sporder, "1"])
            expected.append(house)
    rows.insert(2, ["P", "2018HU9999999", 1, "02", 70, 40, "2"])  # no housing record
    expected.insert(2, None)
    persons = _write_csv(tmp_path / "psam_p02.csv", ["RT", "SERIALNO", "SPORDER", "ST", "PWGTP", "AGEP", "SEX"], rows)

    result = read_pums(persons, housing_zip, columns=["ST", "AGEP", "SEX"], cache_dir=cache_dir)
    df = result.frame
    assert df.columns == ["SERIALNO", "SPORDER", "PWGTP", "ST", "AGEP", "SEX", "WGTP", "HHL", "HHT", "HUPAC", MATCH_COLUMN]
    assert df["SERIALNO"].to_list() == [r[1] for r in rows]  # person order is kept
    for column in ("HHL", "HHT", "HUPAC", "WGTP"):
        want = [None if h is None else _raw(h[column], column == "WGTP") for h in expected]
        assert df[column].to_list() == want, column
    assert df[MATCH_COLUMN].to_list() == [h is not None for h in expected]
    assert result.join == pums.JoinReport(
        persons=len(rows), matched=len(rows) - 1, unmatched=1, housing_records=3713, unmatched_serials=("2018HU9999999",)
    )
    # the lazy join gives the same frame
    lazy = join_housing(scan_persons(persons, ["ST", "AGEP", "SEX"]), scan_housing(housing_zip, cache_dir=cache_dir))
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect().equals(df)


def test_wyoming_persons_find_no_alaska_housing(person_zip, housing_zip, cache_dir):
    with pytest.warns(UserWarning, match="none of the 5740 persons .* has a housing record"):
        result = read_pums(person_zip, housing_zip, columns=["SEX"], cache_dir=cache_dir)
    assert result.join.persons == 5740 and result.join.matched == 0 and result.join.unmatched == 5740
    assert result.join.housing_records == 3713 and len(result.join.unmatched_serials) == 5
    df = result.frame
    assert df.height == 5740 and not df[MATCH_COLUMN].any()
    assert df["HHL"].null_count() == df["WGTP"].null_count() == 5740
    assert weighted_total(df) == 577737


def test_housing_serials_must_be_unique(tmp_path):
    persons = _write_csv(tmp_path / "p.csv", ["SERIALNO", "SPORDER", "PWGTP"], [["2018HU0000001", 1, 10]])
    housing = _write_csv(
        tmp_path / "h.csv", ["SERIALNO", "WGTP", "HHL"], [["2018HU0000001", 10, "1"], ["2018HU0000001", 10, "2"]]
    )
    with pytest.raises(DataError, match=r"h\.csv has 1 SERIALNO value\(s\) on more than one row \(e\.g\. 2018HU0000001\)"):
        read_pums(persons, housing, columns=[], housing_columns=["HHL"])


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"PUMS person file .*csv_pxx\.zip does not exist"):
        scan_persons(tmp_path / "csv_pxx.zip")
    with pytest.raises(DataError, match="is not a file"):
        scan_housing(tmp_path)


def test_corrupt_zip(tmp_path):
    bad = tmp_path / "csv_pwy.zip"
    bad.write_bytes(b"this is not a zip archive\n" * 100)
    with pytest.raises(DataError, match=r"csv_pwy\.zip is not a readable zip archive"):
        scan_persons(bad, cache_dir=tmp_path / "cache")


def test_truncated_zip(person_zip, tmp_path):
    bad = tmp_path / "csv_pwy.zip"
    bad.write_bytes(person_zip.read_bytes()[:600_000])
    with pytest.raises(DataError, match=r"csv_pwy\.zip is not a readable zip archive .*download it again"):
        scan_persons(bad, cache_dir=tmp_path / "cache")


def test_damaged_member_is_caught_by_its_crc(person_zip, tmp_path):
    bad = tmp_path / "csv_pwy.zip"
    shutil.copyfile(person_zip, bad)
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo("psam_p56.csv")
    data = bytearray(bad.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    middle = start + info.compress_size // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    bad.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"member psam_p56\.csv of .*csv_pwy\.zip cannot be decompressed .*download it again"):
        scan_persons(bad, ["SEX"], cache_dir=cache)
    assert not any(p.suffix == ".csv" for p in cache.iterdir())  # no half-extracted file is left for later runs


def test_zip_without_a_psam_member(person_zip, tmp_path):
    other = tmp_path / "csv_pxx.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("README.txt", "nothing here")
    with pytest.raises(DataError, match=r"csv_pxx\.zip has no psam_p\*\.csv member .*holds README\.txt"):
        scan_persons(other)
    with pytest.raises(DataError, match=r"csv_pwy\.zip has no psam_h\*\.csv member .*is this the person file"):
        scan_housing(person_zip)


def test_missing_required_columns_are_named(tmp_path):
    path = _write_csv(tmp_path / "psam_p99.csv", ["RT", "SERIALNO", "SPORDER", "AGEP"], [["P", "2018HU0000001", 1, 30]])
    with pytest.raises(DataError) as info:
        scan_persons(path, ["AGEP"])
    message = str(info.value)
    assert "psam_p99.csv" in message and "lacks column(s) PWGTP" in message and "required in every person file" in message


def test_requested_columns_missing_from_the_file_are_named(person_zip, housing_zip, cache_dir):
    with pytest.raises(DataError, match=r"psam_p56\.csv in .*csv_pwy\.zip lacks column\(s\) HHL, NOPE; HHL is a housing-record"):
        scan_persons(person_zip, ["SEX", "HHL", "NOPE"], cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"psam_h02\.csv in .*lacks column\(s\) SCHL; SCHL is a person-record"):
        scan_housing(housing_zip, ["SCHL"], cache_dir=cache_dir)


def test_a_housing_csv_given_as_persons(housing_zip, tmp_path):
    with zipfile.ZipFile(housing_zip) as zf:
        zf.extract("psam_h02.csv", tmp_path)
    with pytest.raises(DataError, match=r"psam_h02\.csv lacks column\(s\) SPORDER, PWGTP, AGEP .*this looks like a housing file"):
        scan_persons(tmp_path / "psam_h02.csv", ["AGEP"])


def test_empty_file_and_unparsable_numbers(tmp_path):
    empty = tmp_path / "psam_p01.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"psam_p01\.csv is empty"):
        scan_persons(empty)
    bad = _write_csv(tmp_path / "psam_p02.csv", ["SERIALNO", "SPORDER", "PWGTP"], [["2018HU0000001", 1, "ten"]])
    with pytest.raises(DataError, match=r"PUMS person file .*psam_p02\.csv could not be read"):
        read_pums(bad, columns=[])
