"""Shared fixtures: a local OpenAI-compatible server on 127.0.0.1 for engine tests.

The server answers /v1/chat/completions. Its behaviour is set per test: always
fail with a status, fail at random with 429 (+ Retry-After) or 500, answer a
fixed text, echo, or answer with a function of the request body (which may
also return a whole response: a dict with status, headers, content,
finish_reason and usage). It counts requests so tests can check what reached it, with the
time each arrived.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _State:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_status: int | None = None
        self.flaky: float = 0.0
        self.reply = "A"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.rng = random.Random(7)


def _handler(state: _State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.requests.append({"body": body, "auth": self.headers.get("authorization", ""), "at": time.monotonic()})
                roll = state.rng.random()
            if state.fail_status is not None or roll < state.flaky:
                status = state.fail_status or (429 if roll < state.flaky / 2 else 500)
                payload = json.dumps({"error": {"message": f"simulated {status}", "type": "server_error"}}).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("retry-after", "0")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if callable(state.reply):
                reply = state.reply(body)
            else:
                reply = state.reply if state.reply != "echo" else body["messages"][-1]["content"][-40:]
            scripted = reply if isinstance(reply, dict) else {"content": reply}
            if scripted.get("status", 200) != 200:
                payload = json.dumps({"error": {"message": f"scripted {scripted['status']}", "type": "error"}}).encode()
                self.send_response(scripted["status"])
                for name, value in scripted.get("headers", {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            reply = scripted["content"]
            payload = json.dumps(
                {
                    "id": "cmpl-test",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "test-model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": scripted.get("finish_reason", "stop")}],
                    "usage": scripted.get("usage", {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}),
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def openai_server(monkeypatch):
    """Yields (state, base_url); requests go to 127.0.0.1 only."""
    state = _State()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-FAKEKEY-0123456789abcdef")
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# The simulator's "is this controversial?" rule, restated here rather than
# imported (so a test compares the classifier's output with an independent
# reading): a question is controversial when one of its words asks for a
# judgment of value.
_VALUE_CUES = set(
    "should ought better best worse worst right wrong fair unfair moral immoral acceptable justified believe agree disagree "
    "deserve allowed ban legal illegal ethical".split()
)


def sim_controversial(text: str) -> bool:
    return bool(set(re.findall(r"[a-z0-9']+", text.lower())) & _VALUE_CUES)


@pytest.fixture
def judged():
    """The simulator's controversial rule (see ``sim_controversial``)."""
    return sim_controversial


@pytest.fixture
def spec_error():
    """``spec_error(path, fragments)``: loading the spec at ``path`` fails with
    a SpecError that names the file and contains every fragment."""
    from persona_exp.errors import SpecError
    from persona_exp.pipeline import load_spec

    def check(path, fragments) -> str:
        with pytest.raises(SpecError) as err:
            load_spec(path)
        msg = str(err.value)
        assert str(path) in msg
        for fragment in fragments:
            assert fragment in msg, msg
        return msg

    return check
