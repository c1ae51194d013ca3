"""A local stand-in for Vertex AI's batch prediction and Cloud Storage APIs.

It serves, on 127.0.0.1, what litellm's vertex_ai files and batches calls
reach (with ``api_base`` set to this server, and the redirections of
:func:`route_litellm_here`):

- ``POST /token``: google-auth's token exchange for a service account;
- ``POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=...``: a GCS
  upload, and ``GET /storage/v1/b/{bucket}/o/{name}?alt=media``: a download;
- ``POST|GET .../batchPredictionJobs`` (create, list by pages),
  ``GET .../batchPredictionJobs/{id}`` and ``POST .../{id}:cancel``;
- ``POST .../publishers/google/models/{model}:generateContent``: a call sent
  online (a failed line's retry).

Answers are deterministic: ``reply(prompt)`` ("A" or "B" from a hash of the
request's text unless a test gives its own), and the prompts ``fail`` picks
come back as failed rows (a non-empty ``status``, as Vertex writes them). A job
is pending at first, running at its first look, and succeeds ``delay`` seconds
after it was created, writing ``predictions.jsonl`` (rows in reverse order:
the reader must match them by id) into a subfolder of its output prefix, as
Vertex does. It counts what it was given: ``submitted`` (prompts over every
job created) and ``online`` (prompts sent to generateContent), and the requests
that came without a bearer token (``unauthorized``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from batch_testing import LocalServer
from urllib.parse import parse_qs, unquote, urlparse

PROJECT, LOCATION, BUCKET = "fake-project", "us-central1", "fake-bucket"


def prompt_of(request: dict[str, Any]) -> str:
    """The text of a Gemini request (system instruction and contents), which identifies a call in these tests."""
    parts = [*(request.get("systemInstruction") or {}).get("parts", []), *(p for c in request.get("contents", []) for p in c.get("parts", []))]
    return "\n".join(p["text"] for p in parts if "text" in p)


def default_reply(prompt: str) -> str:
    return "A" if hashlib.sha256(prompt.encode()).digest()[0] % 2 == 0 else "B"


def fail_every(n: int) -> Callable[[str], bool]:
    """Fails the prompts whose hash is 0 modulo ``n`` (about 1 in n)."""
    return lambda prompt: int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % n == 0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeVertexServer(LocalServer):
    def __init__(self, *, delay: float = 0.5, reply: Callable[[str], str] = default_reply, fail: Callable[[str], bool] = lambda p: False,
                 page_size: int = 100):
        self.delay, self.reply, self.fail, self.page_size = delay, reply, fail, page_size
        self.drop_create_responses = 0  # this many of the next creates make the job, then hang up without answering
        self.failing_lists = 0  # this many of the next listings of jobs answer 503
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # id -> the job as Vertex shows it, + private "_at"
        self.unauthorized = 0
        super().__init__(self._handler(), 0)

    @property
    def url(self) -> str:
        return self.root

    # --- the service's behaviour -----------------------------------------------

    def _answer(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        prompt = prompt_of(request)
        text = self.reply(prompt)
        words = len(prompt.split())
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": words, "candidatesTokenCount": 1, "totalTokenCount": words + 1},
                "modelVersion": model, "responseId": hashlib.sha256(prompt.encode()).hexdigest()[:16]}

    def add_job(self, input_uri: str, model: str = "publishers/google/models/gemini-2.5-flash", display: str = "someone else's job",
                parent: str = f"projects/{PROJECT}/locations/{LOCATION}") -> dict[str, Any]:
        """Creates a job (litellm's create, or a test's job of another user), counting the prompts it holds."""
        bucket, name = input_uri[5:].split("/", 1)
        rows = [json.loads(line) for line in self.objects.get((bucket, name), b"").decode().splitlines() if line.strip()]
        self.submitted.update(prompt_of(r["request"]) for r in rows)
        jid = str(7_000_000_000 + len(self.jobs))
        job = {"name": f"{parent}/batchPredictionJobs/{jid}", "displayName": display, "model": model,
               "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
               "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": input_uri.rsplit("/", 1)[0]}},
               "state": "JOB_STATE_PENDING", "createTime": _now(), "updateTime": _now(), "_at": time.time()}
        self.jobs[jid] = job
        return job

    def _advance(self, job: dict[str, Any]) -> None:
        """Pending, then running at the first look, succeeded ``delay`` seconds after creation; a cancel ends it without output."""
        state = job["state"]
        if state == "JOB_STATE_CANCELLING":
            job["state"] = "JOB_STATE_CANCELLED"
        if state not in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
            return
        if time.time() - job["_at"] < self.delay:
            job["state"] = "JOB_STATE_RUNNING"
            return
        bucket, name = job["inputConfig"]["gcsSource"]["uris"][0][5:].split("/", 1)
        model = job["model"].rsplit("/", 1)[-1]
        rows = []
        for line in reversed(self.objects[(bucket, name)].decode().splitlines()):
            request = json.loads(line)["request"]
            if self.fail(prompt_of(request)):
                rows.append({"request": request, "status": "Bad Request: fake failure of this row", "response": {}, "processed_time": _now()})
            else:
                rows.append({"request": request, "status": "", "response": self._answer(request, model), "processed_time": _now()})
        out_dir = f"{job['outputConfig']['gcsDestination']['outputUriPrefix']}/prediction-model-{job['name'].rsplit('/', 1)[-1]}"
        out_bucket, out_name = out_dir[5:].split("/", 1)
        self.objects[(out_bucket, f"{out_name}/predictions.jsonl")] = "\n".join(json.dumps(r) for r in rows).encode()
        failed = sum(bool(r["status"]) for r in rows)
        job.update(state="JOB_STATE_SUCCEEDED", outputInfo={"gcsOutputDirectory": out_dir}, endTime=_now(), updateTime=_now(),
                   completionStats={"successfulCount": str(len(rows) - failed), "failedCount": str(failed)})

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    # --- HTTP ----------------------------------------------------------------------

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorized(self) -> bool:
                if (self.headers.get("Authorization") or "").startswith("Bearer "):
                    return True
                server.unauthorized += 1
                self._send(401, {"error": {"code": 401, "message": "Request is missing required authentication credential."}})
                return False

            def do_POST(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                body = self._body()
                with server.lock:
                    if u.path == "/token":
                        server.requests["POST token"] += 1
                        return self._send(200, {"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"})
                    if not self._authorized():
                        return None
                    if u.path.startswith("/upload/storage/v1/b/"):
                        server.requests["POST upload"] += 1
                        bucket, name = u.path.split("/")[5], parse_qs(u.query)["name"][0]
                        server.objects[(bucket, name)] = body
                        return self._send(200, {"kind": "storage#object", "id": f"{bucket}/{name}/1700000000000000", "name": name,
                                                "bucket": bucket, "size": str(len(body)), "timeCreated": _now()})
                    head, _, jobs_path = u.path.partition("/batchPredictionJobs")
                    if _ and jobs_path == "":
                        server.requests["POST jobs"] += 1
                        req = json.loads(body)
                        job = server.add_job(req["inputConfig"]["gcsSource"]["uris"][0], req["model"], req["displayName"], head.removeprefix("/v1/"))
                        if server.drop_create_responses > 0:  # the job exists, but its creator never hears of it
                            server.drop_create_responses -= 1
                            self.close_connection = True
                            return None
                        return self._send(200, server._public(job))
                    if _ and jobs_path.endswith(":cancel"):
                        server.requests["POST cancel"] += 1
                        job = server.jobs.get(jobs_path[1 : -len(":cancel")])
                        if job is None:
                            return self._send(404, {"error": {"code": 404, "message": "no such job"}})
                        server._advance(job)
                        if job["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
                            job["state"] = "JOB_STATE_CANCELLING"
                        return self._send(200, {})
                    if u.path.endswith(":generateContent"):
                        req = json.loads(body)
                        server.online[prompt_of(req)] += 1
                        model = u.path.rsplit("/", 1)[-1].split(":")[0]
                        return self._send(200, server._answer(req, model))
                self._send(404, {"error": {"code": 404, "message": f"no route {u.path}"}})

            def do_GET(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                with server.lock:
                    if not self._authorized():
                        return None
                    if u.path.startswith("/storage/v1/b/"):
                        server.requests["GET download"] += 1
                        parts = u.path.split("/", 6)
                        data = server.objects.get((parts[4], unquote(parts[6])))
                        if data is None:
                            return self._send(404, {"error": {"code": 404, "message": f"No such object: {parts[4]}/{unquote(parts[6])}"}})
                        return self._send(200, raw=data)
                    _, found, jobs_path = u.path.partition("/batchPredictionJobs")
                    if found and jobs_path == "":
                        server.requests["GET list"] += 1
                        if server.failing_lists > 0:
                            server.failing_lists -= 1
                            return self._send(503, {"error": {"code": 503, "message": "fake outage", "status": "UNAVAILABLE"}})
                        args = parse_qs(u.query)
                        start = int(args.get("pageToken", ["0"])[0])
                        size = min(int(args.get("pageSize", ["100"])[0]), server.page_size)
                        jobs = list(server.jobs.values())  # oldest first: the reader must not count on an order
                        for job in jobs[start : start + size]:
                            server._advance(job)
                        page = {"batchPredictionJobs": [server._public(j) for j in jobs[start : start + size]]}
                        if start + size < len(jobs):
                            page["nextPageToken"] = str(start + size)
                        return self._send(200, page)
                    if found:
                        server.requests["GET job"] += 1
                        job = server.jobs.get(jobs_path[1:])
                        if job is None:
                            return self._send(404, {"error": {"code": 404, "message": "no such job"}})
                        server._advance(job)
                        return self._send(200, server._public(job))
                self._send(404, {"error": {"code": 404, "message": f"no route {u.path}"}})

        return Handler


def route_litellm_here(url: str, setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Points what litellm cannot redirect by ``api_base`` at this server:
    its guard against requests to private addresses (which a batch's
    retrieval goes through) is told to allow it, and ``afile_content``, whose
    download URL is always storage.googleapis.com, gets an HTTP client that
    rewrites that host. Test code only (``setattr_``: pytest's monkeypatch.setattr
    in a test, plain setattr in a child process)."""
    import httpx
    import litellm
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    target = urlparse(url)

    async def rewrite(request: httpx.Request) -> None:
        if request.url.host == "storage.googleapis.com":
            request.url = request.url.copy_with(scheme="http", host=target.hostname, port=target.port)
            request.headers["Host"] = target.netloc

    original = litellm.afile_content

    async def afile_content(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("custom_llm_provider") == "vertex_ai":
            kwargs.setdefault("client", AsyncHTTPHandler(event_hooks={"request": [rewrite]}))
        return await original(*args, **kwargs)

    setattr_(litellm, "user_url_allowed_hosts", [target.netloc])
    setattr_(litellm, "afile_content", afile_content)


def service_account(url: str) -> dict[str, Any]:
    """A service account's key file whose token exchange goes to this server;
    its RSA key is made here, now (nothing real)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": PROJECT, "private_key_id": "fake-key-id", "private_key": pem,
            "client_email": f"fake@{PROJECT}.iam.gserviceaccount.com", "client_id": "1", "token_uri": f"{url}/token"}
