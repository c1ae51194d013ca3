"""A local stand-in for an OpenAI-compatible provider's files and batches API.

It serves, on 127.0.0.1, what litellm's files/batches calls reach through the
OpenAI SDK: ``POST /v1/files`` (multipart upload), ``GET /v1/files/{id}`` and
``/content``, ``POST /v1/batches``, ``GET /v1/batches`` (listing, newest first)
and ``/v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``, and
``POST /v1/chat/completions`` for calls sent online (a failed line's retry).

Every answer is deterministic (``reply``: "A" or "B" from a hash of the
messages, unless a test gives its own), a batch completes ``delay`` seconds after
it was created, and the lines ``fail`` picks land in the error file. It counts
what it was given: ``submitted`` (custom ids, over all batches) and ``online``
(chat requests by their messages), so a test can check that no call was
submitted twice. Run as a script it serves until killed and prints its URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from batch_testing import LocalServer


def default_reply(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).digest()
    return "A" if digest[0] % 2 == 0 else "B"


def fail_every(n: int) -> Callable[[str], bool]:
    """Fails the lines whose custom id hashes to 0 modulo ``n`` (about 1 in n)."""
    return lambda custom_id: int(hashlib.sha256(custom_id.encode()).hexdigest()[:8], 16) % n == 0


class FakeBatchServer(LocalServer):
    def __init__(self, *, delay: float = 0.5, reply: Callable[[dict[str, Any]], str] = default_reply,
                 fail: Callable[[str], bool] = lambda custom_id: False, port: int = 0):
        self.delay, self.reply, self.fail = delay, reply, fail
        self.failing_polls = 0  # this many of the next looks at a batch answer 500 (a provider's bad minute)
        self.failing_lists = 0  # this many of the next listings of batches answer 500
        self.reject_creates = 0  # this many of the next creates answer 400 (the provider refuses the batch)
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object + "data"
        self.batches: dict[str, dict[str, Any]] = {}
        super().__init__(self._handler(), port)

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    # --- the provider's behaviour ------------------------------------------

    def _new_file(self, name: str, data: bytes, purpose: str) -> dict[str, Any]:
        fid = f"file-{len(self.files) + 1:06d}"
        obj = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()), "filename": name, "purpose": purpose,
               "status": "processed"}
        self.files[fid] = {**obj, "data": data}
        return obj

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        text = self.reply(body)
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body.get("model", "m"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": words, "completion_tokens": len(text.split()), "total_tokens": words + len(text.split())}}

    def _create_batch(self, req: dict[str, Any]) -> dict[str, Any]:
        lines = [json.loads(line) for line in self.files[req["input_file_id"]]["data"].decode().splitlines() if line.strip()]
        bid = f"batch_{len(self.batches) + 1:06d}"
        now = time.time()
        self.submitted.update(line["custom_id"] for line in lines)
        self.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "errors": None, "input_file_id": req["input_file_id"],
                             "completion_window": req["completion_window"], "status": "validating", "output_file_id": None,
                             "error_file_id": None, "created_at": int(now), "metadata": req.get("metadata"),
                             "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_at": now, "_lines": lines}
        return self._public(self.batches[bid])

    def _advance(self, b: dict[str, Any]) -> None:
        """Moves a batch along its life: in progress at once, completed after ``delay``."""
        if b["status"] in ("completed", "cancelled", "failed", "expired"):
            return
        if time.time() - b["_at"] < self.delay:
            b["status"] = "in_progress"
            return
        out, err = [], []
        for i, line in enumerate(b["_lines"]):
            cid = line["custom_id"]
            if self.fail(cid):
                err.append({"id": f"batch_req_{i}", "custom_id": cid, "response": {"status_code": 500, "request_id": f"r{i}",
                            "body": {"error": {"message": "fake server error", "type": "server_error"}}}, "error": None})
            else:
                out.append({"id": f"batch_req_{i}", "custom_id": cid, "response": {"status_code": 200, "request_id": f"r{i}",
                            "body": self._answer(line["body"])}, "error": None})
        enc = lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()  # noqa: E731
        b["output_file_id"] = self._new_file(f"{b['id']}_output.jsonl", enc(out), "batch_output")["id"] if out else None
        b["error_file_id"] = self._new_file(f"{b['id']}_error.jsonl", enc(err), "batch_output")["id"] if err else None
        b["request_counts"] = {"total": len(b["_lines"]), "completed": len(out), "failed": len(err)}
        b["status"], b["completed_at"] = "completed", int(time.time())

    @staticmethod
    def _public(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if not k.startswith("_")}

    # --- HTTP ----------------------------------------------------------------

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                parts = path.strip("/").split("/")  # v1, files|batches, id, content
                with server.lock:
                    server.requests[f"GET {'/'.join(parts[1:2] + parts[3:4])}"] += 1
                    if parts[1:2] == ["files"] and len(parts) >= 3 and parts[2] in server.files:
                        f = server.files[parts[2]]
                        if parts[3:4] == ["content"]:
                            return self._send(200, None, f["data"])
                        return self._send(200, {k: v for k, v in f.items() if k != "data"})
                    if parts[1:] == ["batches"]:
                        if server.failing_lists > 0:
                            server.failing_lists -= 1
                            return self._send(500, {"error": {"message": "fake outage", "type": "server_error"}})
                        args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                        ordered = sorted(server.batches.values(), key=lambda b: b["id"], reverse=True)
                        if "after" in args:
                            ordered = [b for b in ordered if b["id"] < args["after"]]
                        limit = int(args.get("limit", 20))
                        for b in ordered[:limit]:
                            server._advance(b)
                        page = [server._public(b) for b in ordered[:limit]]
                        return self._send(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                                                "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit})
                    if parts[1:2] == ["batches"] and len(parts) == 3 and parts[2] in server.batches:
                        if server.failing_polls > 0:
                            server.failing_polls -= 1
                            return self._send(500, {"error": {"message": "fake outage", "type": "server_error"}})
                        b = server.batches[parts[2]]
                        server._advance(b)
                        return self._send(200, server._public(b))
                self._send(404, {"error": {"message": f"no such object: {path}", "type": "invalid_request_error"}})

            def do_POST(self) -> None:  # noqa: N802
                parts = self.path.split("?")[0].strip("/").split("/")
                body = self._body()
                with server.lock:
                    server.requests[f"POST {'/'.join(parts[1:2] + parts[3:4])}"] += 1
                    if parts[1:] == ["files"]:
                        name, data, purpose = _multipart(self.headers.get("Content-Type", ""), body)
                        return self._send(200, server._new_file(name, data, purpose))
                    if parts[1:] == ["batches"]:
                        if server.reject_creates > 0:
                            server.reject_creates -= 1
                            return self._send(400, {"error": {"message": "fake refusal: bad request", "type": "invalid_request_error"}})
                        req = json.loads(body)
                        if req.get("input_file_id") not in server.files:
                            return self._send(400, {"error": {"message": "no such input file", "type": "invalid_request_error"}})
                        return self._send(200, server._create_batch(req))
                    if parts[1:2] == ["batches"] and parts[3:4] == ["cancel"] and parts[2] in server.batches:
                        b = server.batches[parts[2]]
                        server._advance(b)
                        if b["status"] not in ("completed", "failed", "expired"):
                            b["status"], b["cancelled_at"] = "cancelled", int(time.time())
                        return self._send(200, server._public(b))
                    if parts[1:] == ["chat", "completions"]:
                        req = json.loads(body)
                        server.online[json.dumps(req.get("messages"), sort_keys=True)] += 1
                        return self._send(200, server._answer(req))
                self._send(404, {"error": {"message": f"no such endpoint: {self.path}", "type": "invalid_request_error"}})

        return Handler


def _multipart(content_type: str, body: bytes) -> tuple[str, bytes, str]:
    """(file name, file bytes, purpose) of a multipart/form-data upload."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    name, data, purpose = "upload.jsonl", b"", ""
    for part in body.split(b"--" + boundary):
        head, _, content = part.partition(b"\r\n\r\n")
        if not content:
            continue
        content = content[:-2] if content.endswith(b"\r\n") else content
        header = head.decode(errors="replace")
        if 'name="file"' in header:
            data = content
            if 'filename="' in header:
                name = header.split('filename="', 1)[1].split('"', 1)[0]
        elif 'name="purpose"' in header:
            purpose = content.decode()
    return name, data, purpose


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    with FakeBatchServer(delay=a.delay, port=a.port) as s:
        print(s.url, flush=True)
        threading.Event().wait()
