"""Fixtures for the report and export tests: small stored runs (made once per
test run, through the command line) and a headless Chromium to open reports in.

The browser tests are skipped, with the reason printed, when no Chromium
binary is on PATH (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOO = ROOT / "experiments" / "loo.yaml"
AGREEMENT = ROOT / "experiments" / "agreement.yaml"
SMALL_LOO = [
    "--set", "population.size=300",
    "--set", "experiment.attributes=[age,sex,religion]",
    "--set", "experiment.n_personas=6",
    "--set", "experiment.n_questions=5",
    "--set", "experiment.n_resamples=200",
    "--no-progress",
]
TINY_AGREEMENT = [
    "--set", "population.size=20",
    "--set", "experiment.n_personas=4",
    "--set", "experiment.n_questions=3",
    "--set", "experiment.n_resamples=100",
    "--no-progress",
]

@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def persona_exp(cwd: Path, *args) -> Result:
    """Runs ``persona-exp *args`` in ``cwd`` in this process (a fresh
    interpreter per command would cost a second of imports each) and returns
    its exit code and output."""
    import contextlib
    import io

    from persona_exp import cli

    out, err = io.StringIO(), io.StringIO()
    old_cwd = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as exc:  # argparse: bad arguments
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(old_cwd)
    return Result(int(code or 0), out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def cli():
    """``cli(cwd, *args)`` runs ``persona-exp *args`` in ``cwd``."""
    return persona_exp


@dataclass
class Runs:
    root: Path  # working directory holding .persona-exp
    a: str  # LOO run
    b: str  # the same LOO run with an effect planted on religion (judge calls change, answers are reused)
    agreement: str  # a run of another experiment kind

    @property
    def store(self) -> Path:
        return self.root / ".persona-exp"

    def folder(self, run_id: str) -> Path:
        return next(self.store.glob(f"runs/*/{run_id}"))


def _run(root: Path, *args: str) -> str:
    r = persona_exp(root, "run", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["run_id"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("report-runs")
    a = _run(root, LOO, *SMALL_LOO)
    b = _run(root, LOO, *SMALL_LOO, "--set", "models.judge.sim.effects.religion=4.0")
    agreement = _run(root, AGREEMENT, *TINY_AGREEMENT)
    return Runs(root, a, b, agreement)


# --------------------------------------------------------------------------- the browser

CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = "install Debian's chromium package (apt-get install -y chromium)"

# Injected into a copy of a report: records script errors and failed loads,
# then, on load, writes what the page holds into <pre id="probe-result">.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  __errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || "unknown"));
}, true);
(function () { var orig = console.error; console.error = function () {
  __errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); return orig.apply(console, arguments); }; })();
window.addEventListener("load", function () {
  var figures = Array.prototype.map.call(document.querySelectorAll("figure.plot"), function (f) {
    var svg = f.querySelector("svg"), r = svg ? svg.getBoundingClientRect() : null, b = svg ? svg.getBBox() : null;
    return {plot: f.dataset.plot, run: f.dataset.run || null, width: r ? r.width : 0, height: r ? r.height : 0,
            bbox: b ? [b.width, b.height] : [0, 0],
            texts: svg ? Array.prototype.map.call(svg.querySelectorAll("text"), function (t) { return t.textContent; }) : [],
            shapes: svg ? svg.querySelectorAll("path, rect, use, line, polyline, polygon").length : 0};
  });
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify({errors: __errors, figures: figures, title: document.title,
                                    resources: performance.getEntriesByType("resource").map(function (e) { return e.name; })});
  document.body.appendChild(pre);
});
</script>"""


@dataclass
class Loaded:
    errors: list[str]
    figures: list[dict]
    resources: list[str]
    title: str
    console: list[str]  # console messages chromium logged for the unmodified page


class Browser:
    def __init__(self, exe: str, workdir: Path):
        self.exe = exe
        self.workdir = workdir
        self.version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()

    def _cmd(self, *extra: str) -> list[str]:
        return [self.exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={self.workdir / 'profile'}", *extra]

    def load(self, page: Path) -> Loaded:
        """Opens the page as is (console messages from the log) and a probed copy (errors, plots, resources)."""
        url = page.resolve().as_uri()
        plain = subprocess.run(self._cmd("--enable-logging=stderr", "--v=0", "--dump-dom", url), capture_output=True, text=True, timeout=120)
        assert plain.returncode == 0, plain.stderr[-2000:]
        console = [ln for ln in plain.stderr.splitlines() if ("CONSOLE" in ln and url in ln) or "Uncaught" in ln]
        probed = page.with_name(f"probed-{page.name}")
        text = page.read_text(encoding="utf-8")
        probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
        dom = subprocess.run(self._cmd("--dump-dom", probed.resolve().as_uri()), capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        m = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
        assert m, "the probe did not run: " + dom.stdout[-500:]
        data = json.loads(html.unescape(m.group(1)))
        return Loaded(data["errors"], data["figures"], data["resources"], data["title"], console)

    def screenshot(self, page: Path, out: Path, size: str = "1280,2400") -> Path:
        r = subprocess.run(self._cmd(f"--window-size={size}", f"--screenshot={out}", page.resolve().as_uri()), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and out.is_file(), r.stderr[-2000:]
        return out


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Browser:
    exe = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if exe is None:
        pytest.skip(f"no Chromium binary on PATH (looked for {', '.join(CHROMIUM_NAMES)}): {INSTALL_HINT} to run the browser tests")
    b = Browser(exe, tmp_path_factory.mktemp("chromium"))
    print(f"browser: {b.version}")
    return b


@dataclass
class Reports:
    single: Path  # report of run b
    diff: Path  # report of run b against run a


@pytest.fixture(scope="session")
def reports(runs, tmp_path_factory) -> Reports:
    out = tmp_path_factory.mktemp("reports")
    single, diff = out / "single.html", out / "diff.html"
    r = persona_exp(runs.root, "report", runs.b, "-o", single)
    assert r.returncode == 0, r.stderr
    r = persona_exp(runs.root, "report", runs.b, "--against", runs.a, "-o", diff, "--n-resamples", "200")
    assert r.returncode == 0, r.stderr
    return Reports(single, diff)
