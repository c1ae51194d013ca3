"""Decoding codes into labels, with the dictionary file and with the embedded tables."""

from __future__ import annotations

import csv

import polars as pl
import pytest

from persona_exp.census.decode import decode, unmapped_codes
from persona_exp.census.dictionary import embedded
from persona_exp.census.pums import MATCH_COLUMN, read_pums, scan_housing, scan_persons
from persona_exp.errors import DataError


@pytest.fixture(scope="module")
def persons(person_zip, cache_dir):
    return scan_persons(person_zip, cache_dir=cache_dir).collect()


@pytest.fixture(scope="module")
def housing(housing_zip, cache_dir):
    return scan_housing(housing_zip, cache_dir=cache_dir).collect()


# The two 2018 labels the Bureau printed without their major group prefix,
# with the group of their neighbouring codes (read off the dictionary).
_PREFIXED = {("OCCP", "1555"): "ENG-", ("OCCP", "8000"): "PRD-"}


def _expected_label(raw_dictionary, var, code):
    return raw_dictionary.blanks[var] if code == "" else _PREFIXED.get((var, code), "") + raw_dictionary.labels[var][code]


# --------------------------------------------------------------------------- the real files


def test_every_listed_variable_in_the_files_decodes_completely(persons, housing, dictionary, census):
    present = [v for v in census.LISTED if v in persons.columns or v in housing.columns]
    assert sorted(present) == sorted(census.LISTED)  # all of them are in the 2018 files
    for source in (dictionary, None):
        assert unmapped_codes(persons, source) == {}
        assert unmapped_codes(housing, source) == {}
        checked = [v for v in census.LISTED if v in persons.columns]
        assert unmapped_codes(persons, source, columns=checked) == {}


def test_dictionary_file_and_embedded_tables_decode_alike(persons, housing, dictionary, dictionary_csv):
    for frame in (persons, housing):
        with_file = decode(frame, dictionary, strict=True)
        assert with_file.equals(decode(frame, strict=True))
        assert with_file.equals(decode(frame, str(dictionary_csv)))


def test_labels_equal_an_independent_lookup(persons, housing, raw_persons, raw_housing, raw_dictionary, census):
    for frame, raw in ((persons, raw_persons), (housing, raw_housing)):
        decoded = decode(frame)
        for var in census.LISTED:
            if var not in frame.columns or var in census.NUMERIC:
                continue
            expected = [_expected_label(raw_dictionary, var, r[var]) for r in raw]
            assert decoded[var].to_list() == expected, var
    decoded = decode(persons)
    assert set(decoded["SEX"]) == {"Male", "Female"}
    assert decoded["ST"].unique().to_list() == ["Wyoming/WY"]
    young = decoded.filter(pl.col("AGEP") < 3)
    assert young.height > 0 and set(young["SCHL"]) == {"N/A (less than 3 years old)"}


def test_numeric_variables_stay_numeric(persons, raw_persons, census):
    decoded = decode(persons)
    for var in census.NUMERIC:
        assert decoded.schema[var] == pl.Int64
        assert decoded[var].to_list() == [None if r[var] == "" else int(r[var]) for r in raw_persons]
    assert decoded["PINCP"].null_count() == sum(r["PINCP"] == "" for r in raw_persons) > 0
    # the keys and weights are left alone
    assert decoded.select("SERIALNO", "SPORDER", "PWGTP").equals(persons.select("SERIALNO", "SPORDER", "PWGTP"))


def test_housing_labels_after_a_join(housing_zip, cache_dir, raw_housing, raw_dictionary, tmp_path):
    gq = next(r for r in raw_housing if "GQ" in r["SERIALNO"])
    home = next(r for r in raw_housing if r["SERIALNO"].startswith("2018HU") and r["HHL"] == "2")
    path = tmp_path / "psam_p02.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["SERIALNO", "SPORDER", "PWGTP", "SEX"])
        w.writerows([[gq["SERIALNO"], 1, 20, "1"], [home["SERIALNO"], 1, 30, "2"], ["2018HU9999999", 1, 40, "2"]])
    frame = read_pums(path, housing_zip, columns=["SEX"], cache_dir=cache_dir).frame
    decoded = decode(frame)
    # group quarters: a housing record with blank household variables -> the dictionary's "N/A (GQ/vacant)"
    assert decoded["HHL"].to_list() == ["N/A (GQ/vacant)", "Spanish", None]
    assert decoded["HHT"].to_list() == [raw_dictionary.blanks["HHT"], _expected_label(raw_dictionary, "HHT", home["HHT"]), None]
    assert decoded[MATCH_COLUMN].to_list() == [True, True, False]
    # no housing record is unknown, not "not applicable", and not an unmapped code either
    assert unmapped_codes(frame) == {}


def test_lazy_frames_stay_lazy_and_suffix_keeps_codes(persons):
    lazy = decode(persons.lazy(), columns=["SEX", "SCHL"])
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(decode(persons, columns=["SEX", "SCHL"]))
    both = decode(persons, columns=["SEX"], suffix="_label")
    assert both.columns == [*persons.columns, "SEX_label"]
    assert both.select(pl.col("SEX").replace_strict({"1": "Male", "2": "Female"}).eq(pl.col("SEX_label")).all()).item()


# --------------------------------------------------------------------------- codes without labels


def test_unmapped_codes_are_reported_per_variable():
    frame = pl.DataFrame(
        {
            "SEX": ["1", "3", "3", None],
            "SCHL": ["01", "99", "bb", None],
            "AGEP": [0, 150, 99, 45],
            "WKHP": [None, 0, 99, 40],
            "PINCP": [-19998, -19999, 4209995, None],
            "RAC1P": ["1", "2", "9", "1"],
        }
    )
    found = unmapped_codes(frame)
    assert found == {"SEX": {"3": 2, None: 1}, "SCHL": {"99": 1}, "AGEP": {150: 1}, "WKHP": {0: 1}, "PINCP": {-19999: 1}}
    decoded = decode(frame)
    assert decoded["SEX"].to_list() == ["Male", None, None, None]
    assert decoded["SCHL"].to_list() == ["No schooling completed", None, "N/A (less than 3 years old)", "N/A (less than 3 years old)"]
    assert decoded["WKHP"].to_list() == [None, 0, 99, 40]  # numeric: values kept, blanks null
    with pytest.raises(DataError) as info:
        decode(frame, strict=True)
    message = str(info.value)
    assert "embedded 2018 code tables" in message
    assert "SEX: '3' (2 rows), None (1 row)" in message and "SCHL: '99' (1 row)" in message and "AGEP: 150" in message


def test_character_ranges_keep_the_code(dictionary):
    frame = pl.DataFrame({"PUMA": ["00100", "70301", "99999", "100"], "ST": ["56", "02", "03", "56"]})
    decoded = decode(frame, dictionary)
    assert decoded["PUMA"].to_list() == ["00100", "70301", None, None]
    assert decoded["ST"].to_list() == ["Wyoming/WY", "Alaska/AK", None, "Wyoming/WY"]
    assert unmapped_codes(frame, dictionary) == {"PUMA": {"99999": 1, "100": 1}, "ST": {"03": 1}}


def test_integer_typed_codes_get_their_zeros_back():
    frame = pl.DataFrame({"SCHL": [1, 16, None], "ST": [2, 56, 56], "POBP": [1, 56, 303]})
    decoded = decode(frame)
    table = embedded()
    assert decoded["SCHL"].to_list() == [table["SCHL"].labels["01"], table["SCHL"].labels["16"], "N/A (less than 3 years old)"]
    assert decoded["ST"].to_list() == ["Alaska/AK", "Wyoming/WY", "Wyoming/WY"]
    assert decoded["POBP"].to_list() == [table["POBP"].labels["001"], table["POBP"].labels["056"], table["POBP"].labels["303"]]


def test_bad_decode_requests():
    frame = pl.DataFrame({"SEX": ["1"], "PINCP": ["12x"], "FOO": ["1"]})
    with pytest.raises(DataError, match="no column\\(s\\) AGEP to decode"):
        decode(frame, columns=["AGEP"])
    with pytest.raises(DataError, match="embedded 2018 code tables .* has no value labels for FOO"):
        decode(frame, columns=["FOO"])
    with pytest.raises(DataError, match="column PINCP holds '12x', but PINCP is numeric"):
        decode(frame)
    assert decode(frame, columns=["SEX"])["SEX"].to_list() == ["Male"]
    assert decode(frame.select("FOO")).equals(frame.select("FOO"))  # nothing it knows: unchanged
