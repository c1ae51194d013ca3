"""`persona-exp census fetch` against a local HTTP server on 127.0.0.1.

The server is started by each test (http.server in a thread) and serves small
zips the tests build: a ``psam_p56.csv`` with the real 2018 person header
(read from ``../shared/data/csv_pwy.zip`` when present, else a minimal one)
and a few made-up rows. It counts requests, so re-fetching can be checked not
to download again. No test reaches the network.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from persona_exp.census import fetch
from persona_exp.census.fetch import check_pums_zip, fetch_pums, pums_url, resolve_state, zip_name
from persona_exp.errors import DataError, InvalidArgumentError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MINIMAL_PERSON_HEADER = ["RT", "SERIALNO", "DIVISION", "SPORDER", "PUMA", "REGION", "ST", "ADJINC", "PWGTP", "AGEP", "SEX"]
HOUSING_HEADER = ["RT", "SERIALNO", "DIVISION", "PUMA", "REGION", "ST", "ADJHSG", "ADJINC", "WGTP", "NP", "TYPE", "HHL", "HHT", "HUPAC"]


def person_header() -> list[str]:
    real = DATA / "csv_pwy.zip"
    if real.is_file():
        with zipfile.ZipFile(real) as zf, zf.open("psam_p56.csv") as f:
            return io.TextIOWrapper(f, encoding="ascii", newline="").readline().strip().split(",")
    return list(MINIMAL_PERSON_HEADER)


def csv_text(header: list[str], rows: list[dict[str, str]]) -> str:
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(row.get(c, "") for c in header))
    return "\n".join(lines) + "\n"


def build_zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def person_rows(n: int = 4) -> list[dict[str, str]]:
    return [
        {"RT": "P", "SERIALNO": f"2018HU000000{i}", "DIVISION": "8", "SPORDER": "1", "PUMA": "00100", "REGION": "4",
         "ST": "56", "ADJINC": "1013097", "PWGTP": str(10 + i), "AGEP": str(20 + 7 * i), "SEX": str(1 + i % 2)}
        for i in range(1, n + 1)
    ]


@pytest.fixture(scope="module")
def header() -> list[str]:
    return person_header()


@pytest.fixture(scope="module")
def person_zip(header) -> bytes:
    return build_zip({"psam_p56.csv": csv_text(header, person_rows()), "ACS2018_PUMS_README.pdf": "not a real pdf"})


@pytest.fixture(scope="module")
def housing_zip() -> bytes:
    rows = [{"RT": "H", "SERIALNO": f"2018HU000000{i}", "ST": "56", "WGTP": "12", "NP": "1", "TYPE": "1"} for i in range(1, 4)]
    return build_zip({"psam_h56.csv": csv_text(HOUSING_HEADER, rows)})


class Server:
    """Routes: path -> (status, body, extra headers). Requests are recorded."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.requests: list[str] = []
        self.agents: list[str] = []
        self.lock = threading.Lock()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                with state.lock:
                    state.requests.append(self.path)
                    state.agents.append(self.headers.get("User-Agent", ""))
                status, body, extra = state.routes.get(self.path, (404, b"<html>Not Found</html>", {}))
                self.send_response(status)
                headers = {"Content-Type": "application/zip", "Content-Length": str(len(body)), **extra}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/pums"

    def serve(self, year: int, name: str, body: bytes, status: int = 200, **extra: str) -> str:
        path = f"/pums/{year}/1-Year/{name}"
        self.routes[path] = (status, body, {k.replace("_", "-"): v for k, v in extra.items()})
        return path


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


def cli(monkeypatch, argv: list[str]) -> int:
    """The real `persona-exp` entry point, in this process."""
    from persona_exp.cli import main

    return main(argv)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- names and addresses


def test_states_resolve_from_code_name_and_fips():
    assert resolve_state("WY").abbr == "wy"
    assert resolve_state("wyoming").abbr == "wy"
    assert resolve_state(" Wyoming ").fips == "56"
    assert resolve_state("56").abbr == "wy"
    assert resolve_state("6").abbr == "ca"
    assert resolve_state("district of columbia").abbr == "dc"
    assert resolve_state("D.C.").abbr == "dc"
    assert resolve_state("Puerto Rico").abbr == "pr"
    assert resolve_state("US").abbr == "us"
    assert resolve_state("United States").abbr == "us"
    assert resolve_state("new-york").abbr == "ny"
    assert len({s.abbr for s in fetch.STATES}) == 53  # 50 states, DC, PR, the nation
    with pytest.raises(InvalidArgumentError, match="'Atlantis' is not a PUMS geography"):
        resolve_state("Atlantis")


def test_url_follows_the_bureau_pattern():
    assert pums_url(2018, "WY") == "https://www2.census.gov/programs-surveys/acs/data/pums/2018/1-Year/csv_pwy.zip"
    assert pums_url(2022, "Alaska", "housing") == "https://www2.census.gov/programs-surveys/acs/data/pums/2022/1-Year/csv_hak.zip"
    assert pums_url(2019, "us") == "https://www2.census.gov/programs-surveys/acs/data/pums/2019/1-Year/csv_pus.zip"
    assert pums_url(2018, "wy", base_url="http://127.0.0.1:8/m/") == "http://127.0.0.1:8/m/2018/1-Year/csv_pwy.zip"
    assert zip_name("Texas", "housing") == "csv_htx.zip"
    with pytest.raises(InvalidArgumentError, match="must start with http"):
        pums_url(2018, "wy", base_url="file:///etc")
    with pytest.raises(InvalidArgumentError, match="kind"):
        zip_name("wy", "people")


@pytest.mark.parametrize(
    ("year", "message"),
    [(2016, "from 2017 on"), (2020, "did not release standard 2020"), (2999, "released in the autumn"), ("next", "not a year")],
)
def test_unusable_years_are_refused_before_any_request(year, message, server, tmp_path):
    with pytest.raises(InvalidArgumentError, match=message):
        fetch_pums(year, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert server.requests == []


# --------------------------------------------------------------------------- downloading


def test_fetch_downloads_checks_and_keeps_the_zip(server, person_zip, header, tmp_path, monkeypatch, capsys):
    path = server.serve(2018, "csv_pwy.zip", person_zip)
    dest = tmp_path / "zips"
    code = cli(monkeypatch, ["census", "fetch", "--year", "2018", "--state", "Wyoming", "--dest", str(dest),
                             "--base-url", server.base, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert server.requests == [path]
    assert server.agents[0].startswith("persona-exp/")
    target = dest / "csv_pwy.zip"
    assert target.read_bytes() == person_zip
    assert leftovers(dest) == ["csv_pwy.zip"]  # no temporary file left
    assert str(target) in out and "downloaded from" in out and "psam_p56.csv" in out
    assert f"--set population.persons={target}" in out
    # the reader takes the downloaded file as it is
    from persona_exp.census.pums import file_columns, scan_persons

    assert file_columns(target) == header
    frame = scan_persons(target, ["AGEP"], cache_dir=tmp_path / "extract").collect()
    assert frame["AGEP"].to_list() == [27, 34, 41, 48]
    assert frame["PWGTP"].sum() == 11 + 12 + 13 + 14


def test_refetch_does_not_download_again(server, person_zip, tmp_path, monkeypatch, capsys):
    server.serve(2018, "csv_pwy.zip", person_zip)
    argv = ["census", "fetch", "--year", "2018", "--state", "wy", "--dest", str(tmp_path), "--base-url", server.base, "--no-progress"]
    assert cli(monkeypatch, argv) == 0
    assert len(server.requests) == 1
    mtime = (tmp_path / "csv_pwy.zip").stat().st_mtime_ns
    capsys.readouterr()
    assert cli(monkeypatch, argv) == 0
    assert len(server.requests) == 1  # nothing was requested the second time
    assert "already present" in capsys.readouterr().out
    assert (tmp_path / "csv_pwy.zip").stat().st_mtime_ns == mtime
    fetched = fetch_pums(2018, "WY", dest=tmp_path, base_url=server.base, force=True, progress=False)
    assert fetched[0].downloaded and len(server.requests) == 2  # --force does


def test_both_kinds_and_json_output(server, person_zip, housing_zip, tmp_path, monkeypatch, capsys):
    server.serve(2018, "csv_pwy.zip", person_zip)
    server.serve(2018, "csv_hwy.zip", housing_zip)
    code = cli(monkeypatch, ["census", "fetch", "--year", "2018", "--state", "56", "--kind", "both", "--dest", str(tmp_path),
                             "--base-url", server.base, "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind"], Path(r["path"]).name, r["downloaded"]) for r in rows] == [
        ("person", "csv_pwy.zip", True), ("housing", "csv_hwy.zip", True)]
    assert rows[1]["members"] == ["psam_h56.csv"] and rows[1]["bytes"] == len(housing_zip)
    assert sorted(server.requests) == ["/pums/2018/1-Year/csv_hwy.zip", "/pums/2018/1-Year/csv_pwy.zip"]


def test_default_destination_is_the_pums_cache(server, person_zip):
    from persona_exp.census.pums import default_cache_dir

    server.serve(2019, "csv_pwy.zip", person_zip)
    (fetched,) = fetch_pums(2019, "wy", base_url=server.base, progress=True)  # the progress display must not break anything
    assert fetched.path == default_cache_dir() / "downloads" / "2019" / "csv_pwy.zip"
    assert fetched.path.read_bytes() == person_zip and fetched.downloaded


def test_a_damaged_file_in_place_is_downloaded_again(server, person_zip, tmp_path):
    server.serve(2018, "csv_pwy.zip", person_zip)
    (tmp_path / "csv_pwy.zip").write_bytes(person_zip[: len(person_zip) // 2])  # an old truncated copy
    (fetched,) = fetch_pums(2018, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert fetched.downloaded and len(server.requests) == 1
    assert (tmp_path / "csv_pwy.zip").read_bytes() == person_zip


# --------------------------------------------------------------------------- failures


def test_404_is_a_clear_error_and_leaves_nothing(server, tmp_path, monkeypatch, capsys):
    dest = tmp_path / "zips"
    code = cli(monkeypatch, ["census", "fetch", "--year", "2018", "--state", "WY", "--dest", str(dest), "--base-url", server.base])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{server.base}/2018/1-Year/csv_pwy.zip" in err
    assert "HTTP 404" in err and "check the year" in err
    assert "Traceback" not in err
    assert leftovers(dest) == []


def test_server_error_names_status(server, tmp_path):
    server.serve(2018, "csv_pwy.zip", b"busy", status=503)
    with pytest.raises(DataError, match=r"csv_pwy\.zip failed: HTTP 503.*try again later"):
        fetch_pums(2018, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert leftovers(tmp_path) == []


def test_a_corrupt_download_is_refused_and_leaves_nothing(server, tmp_path, monkeypatch, capsys):
    server.serve(2018, "csv_pwy.zip", b"<html><body>Service temporarily unavailable</body></html>" * 20)
    code = cli(monkeypatch, ["census", "fetch", "--year", "2018", "--state", "WY", "--dest", str(tmp_path), "--base-url", server.base])
    err = capsys.readouterr().err
    assert code == 2
    assert "csv_pwy.zip failed" in err and "not a readable zip archive" in err and "nothing was saved" in err
    assert leftovers(tmp_path) == []


def test_a_truncated_transfer_is_refused_and_leaves_nothing(server, person_zip, tmp_path):
    half = len(person_zip) // 2
    server.serve(2018, "csv_pwy.zip", person_zip[:half], Content_Length=str(len(person_zip)))
    with pytest.raises(DataError, match=rf"received {half:,} of {len(person_zip):,} bytes; nothing was saved"):
        fetch_pums(2018, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert leftovers(tmp_path) == []


def test_a_zip_of_another_state_is_refused(server, header, tmp_path):
    server.serve(2018, "csv_pwy.zip", build_zip({"psam_p02.csv": csv_text(header, person_rows(2))}))
    with pytest.raises(DataError, match=r"no psam_p56\.csv member \(the Wyoming person file\); it holds psam_p02\.csv"):
        fetch_pums(2018, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert leftovers(tmp_path) == []


def test_a_member_without_a_pums_header_is_refused(server, tmp_path):
    server.serve(2018, "csv_pwy.zip", build_zip({"psam_p56.csv": "hello,world\n1,2\n"}))
    with pytest.raises(DataError, match="does not start with a PUMS person header"):
        fetch_pums(2018, "wy", dest=tmp_path, base_url=server.base, progress=False)
    assert leftovers(tmp_path) == []


def test_offline_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"could not be reached.*check the network connection") as info:
        fetch_pums(2018, "wy", dest=tmp_path, base_url=f"http://127.0.0.1:{port}/pums", progress=False, timeout=5)
    assert f"http://127.0.0.1:{port}/pums/2018/1-Year/csv_pwy.zip" in str(info.value)
    assert leftovers(tmp_path) == []


def test_national_zip_parts_are_accepted(server, header, tmp_path):
    body = build_zip({"psam_pusa.csv": csv_text(header, person_rows(2)), "psam_pusb.csv": csv_text(header, person_rows(1))})
    server.serve(2018, "csv_pus.zip", body)
    (fetched,) = fetch_pums(2018, "us", dest=tmp_path, base_url=server.base, progress=False)
    assert fetched.members == ("psam_pusa.csv", "psam_pusb.csv")
    assert check_pums_zip(fetched.path, "us") == ["psam_pusa.csv", "psam_pusb.csv"]
