"""The data-dictionary parser and the embedded 2018 code tables."""

from __future__ import annotations

import json
import zipfile
from importlib import resources

import pytest

from persona_exp.census import _build_codes
from persona_exp.census.dictionary import (
    EMBEDDED_VARIABLES,
    embedded,
    parse_dictionary,
    read_dictionary,
)
from persona_exp.errors import DataError, InvalidArgumentError

SMALL = """\
NAME,RT,C,1,"Record Type"
VAL,RT,C,1,"H","H","Housing Record or Group Quarters Unit"
NAME,SERIALNO,C,13,"Serial number"
VAL,SERIALNO,C,13,"2018GQ0000001","2018GQ9999999","GQ Unique identifier"
NAME,WGTP,N,5,"Housing Unit Weight"
VAL,WGTP,N,5,"0","0","Group quarters place holder record"
VAL,WGTP,N,5,"1","9999","Integer weight of housing unit"
NAME,HHL,C,1,"Household language"
VAL,HHL,C,1,"b","b","N/A (GQ/vacant)"
VAL,HHL,C,1,"1","1","English only"
NAME,RT,C,1,"Record Type"
VAL,RT,C,1,"H","H","Housing Record or Group Quarters Unit"
NAME,SERIALNO,C,13,"Serial number"
VAL,SERIALNO,C,13,"2018GQ0000001","2018GQ9999999","GQ Unique identifier"
NAME,PWGTP,N,5,"Person's weight"
VAL,PWGTP,N,5,"1","9999","Integer weight of person"
NAME,PINCP,N,7,"Total person's income"
VAL,PINCP,N,7,"bbbbbbb","bbbbbbb","N/A (less than 15 years old)"
VAL,PINCP,N,7,"0","0","None"
VAL,PINCP,N,7,"-19998","-19998","Loss of $19998 or more"
VAL,PINCP,N,7,"-19997","-1","Loss $1 to $19997"
VAL,PINCP,N,7,"1","4209995","$1 to $4209995"
NAME,PUMA,C,5,"PUMA"
VAL,PUMA,C,5,"00100","70301","Public use microdata area codes"
"""


# --------------------------------------------------------------------------- the real 2018 dictionary


def test_real_dictionary_has_every_variable_type_and_description(dictionary, raw_dictionary):
    assert set(dictionary) == set(raw_dictionary.names)
    for name, row in raw_dictionary.names.items():
        v = dictionary[name]
        assert (v.type, v.width, v.description) == (row[2], int(row[3]), row[4])
    assert dictionary.types["SCHL"] == "C" and dictionary.types["AGEP"] == "N" and dictionary.types["PINCP"] == "N"
    assert dictionary.descriptions["SCHL"] == "Educational attainment"


def test_real_dictionary_single_code_labels_equal_the_raw_rows(dictionary, raw_dictionary):
    for var, labels in raw_dictionary.labels.items():
        fixed = {c: lab for c, lab in dictionary.labels[var].items() if lab != labels.get(c)}
        # the only change: occupation and industry labels the Bureau printed without their group prefix get it
        assert all(var in ("OCCP", "INDP") and lab.endswith("-" + labels[c]) for c, lab in fixed.items()), (var, fixed)
        for code, label in labels.items():
            assert dictionary[var].label(code) in (label, fixed.get(code))
    assert dictionary.labels["SCHL"]["01"] == "No schooling completed"
    for var, blank in raw_dictionary.blanks.items():
        assert dictionary[var].blank_label == blank
        assert dictionary[var].label(None) == blank and dictionary[var].label("b" * dictionary[var].width) == blank
    assert dictionary["SCHL"].blank_label == "N/A (less than 3 years old)"
    assert dictionary["SEX"].blank_label is None and dictionary["SEX"].label(None) is None


def test_real_dictionary_value_ranges(dictionary):
    pincp = dictionary["PINCP"]
    assert pincp.numeric
    assert [(r.low, r.high) for r in pincp.ranges] == [("-19997", "-1"), ("1", "4209995")]
    assert pincp.label(-500) == "Loss $1 to $19997 (Rounded components)"
    assert pincp.label("-19998") == "Loss of $19998 or more (Rounded & bottom-coded components)"
    assert pincp.label(0) == "None"
    assert pincp.label(4209995) == "$1 to $4209995 (Rounded & top-coded components)"
    assert pincp.label(4209996) is None and pincp.label(-19999) is None
    assert dictionary["AGEP"].label(0) == "Under 1 year" and dictionary["AGEP"].label("45") == "1 to 99 years (Top-coded)"
    assert dictionary["AGEP"].label(100) is None
    assert dictionary["WKHP"].label(99) == "99 or more usual hours"
    puma = dictionary["PUMA"]
    assert puma.label("00100") == puma.label("70301") == "Public use microdata area codes"
    assert puma.label("00099") is None and puma.label("100") is None  # fixed-width codes
    assert dictionary["SERIALNO"].label("2018GQ0000024") == "GQ Unique identifier"
    assert dictionary["SERIALNO"].label("2018HU0000024") == "HU Unique identifier"
    assert dictionary["SERIALNO"].label("2017HU0000024") is None


def test_real_dictionary_knows_housing_and_person_records(dictionary):
    assert dictionary["HHL"].records == {"H"} and dictionary["WGTP"].records == {"H"}
    assert dictionary["SCHL"].records == {"P"} and dictionary["PWGTP"].records == {"P"}
    assert dictionary["SERIALNO"].records == {"H", "P"} and dictionary["ST"].records == {"H", "P"}
    # the shared variables are listed in both sections; their rows are not doubled
    assert len(dictionary["SERIALNO"].ranges) == 2
    assert len(dictionary["ST"].labels) == 52


# --------------------------------------------------------------------------- a small file of the same layout


def test_small_dictionary(tmp_path):
    path = tmp_path / "dict.csv"
    path.write_text(SMALL)
    d = read_dictionary(path)
    assert d.source == str(path)
    assert list(d) == ["RT", "SERIALNO", "WGTP", "HHL", "PWGTP", "PINCP", "PUMA"]
    assert d["HHL"].records == {"H"} and d["PINCP"].records == {"P"} and d["RT"].records == {"H", "P"}
    assert d["HHL"].labels == {"1": "English only"} and d["HHL"].blank_label == "N/A (GQ/vacant)"
    assert d["PINCP"].labels == {"0": "None", "-19998": "Loss of $19998 or more"}
    assert d["PINCP"].label(-1) == "Loss $1 to $19997" and d["PINCP"].label("") == "N/A (less than 15 years old)"
    assert d["WGTP"].label(0) == "Group quarters place holder record" and d["WGTP"].label(10000) is None
    assert d.subset(["HHL", "nope"]).labels == {"HHL": {"1": "English only"}}


def test_windows_1252_file_is_read(tmp_path):
    path = tmp_path / "dict.csv"
    path.write_bytes('NAME,LANP,C,4,"Language"\nVAL,LANP,C,4,"1200","1200","Espa\u00f1ol"\n'.encode("cp1252"))
    assert read_dictionary(path)["LANP"].labels == {"1200": "Espa\u00f1ol"}


# --------------------------------------------------------------------------- another layout


BAD = [
    ("Variable,Type,Label\nSEX,C,Sex\n", ["line 1", "expected NAME/VAL records"]),
    ('NAME,SEX,C,1,"Sex"\nVAL,SEX,C,1,"1","Male"\n', ["line 2", "VAL record has 6 fields, expected 7"]),
    ('NAME,SEX,C,1\n', ["line 1", "NAME record has 4 fields, expected 5"]),
    ('NAME,SEX,X,1,"Sex"\n', ["line 1", "field 'type'", "SEX", "'X'"]),
    ('NAME,SEX,C,one,"Sex"\n', ["line 1", "field 'width'", "SEX"]),
    ('NAME,SEX,C,1,"Sex"\nVAL,AGE,C,1,"1","1","x"\n', ["line 2", "VAL record for AGE comes before any NAME record"]),
    ('NAME,AGEP,N,2,"Age"\nVAL,AGEP,N,2,"a","z","letters"\n', ["line 2", "AGEP", "not a pair of integers"]),
    ("\n\n", ["no NAME/VAL records found"]),
]


@pytest.mark.parametrize("text,fragments", BAD)
def test_other_layouts_raise_data_error_naming_file_and_field(tmp_path, text, fragments):
    path = tmp_path / "not_a_dictionary.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_dictionary(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_zip_or_a_missing_file_is_not_a_dictionary(tmp_path):
    z = tmp_path / "csv_pwy.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("psam_p56.csv", "RT,SERIALNO\n")
    with pytest.raises(DataError, match=r"csv_pwy\.zip line 1: expected NAME/VAL records"):
        read_dictionary(z)
    with pytest.raises(DataError, match=r"nowhere\.csv does not exist"):
        read_dictionary(tmp_path / "nowhere.csv")
    with pytest.raises(DataError, match="<lines> line 1"):
        parse_dictionary(["a,b,c\n"], "<lines>")


# --------------------------------------------------------------------------- embedded tables


def test_embedded_tables_hold_exactly_the_needed_variables(census):
    table = embedded()
    assert list(table) == list(EMBEDDED_VARIABLES)
    assert set(census.LISTED) <= set(table)
    assert "PUMA" not in table
    assert table.source.startswith("embedded 2018")
    data = resources.files("persona_exp.census").joinpath("codes_2018.json").read_bytes()
    assert len(data) < 100_000
    assert set(json.loads(data)["variables"]) == set(EMBEDDED_VARIABLES)


def test_embedded_tables_agree_with_the_dictionary_file(dictionary):
    table = embedded()
    for name in table:
        a, b = table[name], dictionary[name]
        assert (a.type, a.width, a.description, a.records) == (b.type, b.width, b.description, b.records), name
        assert a.labels == b.labels, name
        assert a.ranges == b.ranges, name
        assert a.blank_label == b.blank_label, name


def test_build_script_regenerates_the_packaged_file(dictionary_csv, tmp_path, capsys):
    out = tmp_path / "codes.json"
    assert _build_codes.main([str(dictionary_csv), "--output", str(out)]) == 0
    packaged = resources.files("persona_exp.census").joinpath("codes_2018.json").read_bytes()
    assert out.read_bytes() == packaged
    assert json.loads(out.read_text())["year"] == 2018  # taken from the file name
    assert "wrote" in capsys.readouterr().out


def test_no_embedded_tables_for_other_years():
    with pytest.raises(InvalidArgumentError, match="2017.*2018"):
        embedded(2017)


def test_every_occupation_and_industry_code_has_its_group(dictionary, raw_dictionary):
    """Each code of OCCP and INDP decodes to a label with its major group
    prefix (the field of a job description reads it), except the codes that
    name no job; a label printed without one takes its neighbours' group."""
    import re

    group = re.compile(r"^([A-Z]{3})-")
    no_job = {"9920"}
    for var in ("OCCP", "INDP"):
        raw = raw_dictionary.labels[var]
        missing = [c for c in raw if c not in no_job and not group.match(dictionary[var].label(c) or "")]
        assert missing == [], (var, missing)
        codes = sorted((c for c in raw if c.isdigit() and c not in no_job), key=int)
        for before, code, after in zip(codes, codes[1:], codes[2:]):
            if not group.match(raw[code]):  # a fixed label: the group of both neighbours
                assert group.match(dictionary[var].label(code)).group(1) == group.match(raw[before]).group(1) == group.match(raw[after]).group(1)
    assert dictionary["OCCP"].label("1555") == "ENG-Other Engineering Technologists And Technicians, Except Drafters"
    from persona_exp.census.dictionary import embedded

    assert embedded()["OCCP"].label("1555") == dictionary["OCCP"].label("1555")
