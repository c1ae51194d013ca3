"""A local stand-in for AWS Bedrock's batch inference and the S3 it stages in.

It serves, on 127.0.0.1, what litellm's bedrock files and batches calls and
boto3's bedrock client reach (with the redirections of :func:`route_litellm_here`
and :func:`aws_env`):

- ``PUT /{bucket}/{key}`` and ``GET /{bucket}/{key}``: S3 (path style);
- ``POST /model-invocation-job`` (CreateModelInvocationJob),
  ``GET /model-invocation-job/{arn}`` (Get), ``GET /model-invocation-jobs``
  (List: newest first, by pages of ``page_size``, from ``submitTimeAfter``)
  and ``POST /model-invocation-job/{arn}/stop`` (Stop);
- ``POST /model/{model id}/converse`` and ``/invoke``: bedrock-runtime, a call
  sent online (a failed line's retry), reached by the role's ``api_base``.

Every request must carry an AWS SigV4 signature made with the test's access
key (``unauthorized`` counts those that did not). Answers are deterministic:
``reply(prompt)`` ("A" or "B" from a hash of the request's text unless a test
gives its own), and the prompts ``fail`` picks come back as error records, as
Bedrock writes them. A job is Submitted at first, InProgress at its first
look, and Completed ``delay`` seconds after it was created, writing
``<output prefix>/<job id>/<input file name>.out`` (records in reverse order:
the reader must match them by id) in the shape of the model's answers:
Anthropic's Messages for a request with ``anthropic_version``, else Converse
(Nova). A stopped job writes the ``finished_before_stop`` records it had
finished, in the same place. It counts what it was given: ``submitted`` (prompts over every job
created) and ``online`` (prompts sent to the runtime).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import threading
import time
import weakref
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from batch_testing import LocalServer
from urllib.parse import parse_qs, unquote, urlparse

REGION, ACCOUNT, BUCKET = "us-east-1", "123456789012", "fake-bucket"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fake-batch-role"
ACCESS_KEY = "AKIAFAKEFAKEFAKE0000"  # made up for the tests; nothing real


def aws_env(url: str) -> dict[str, str]:
    """The environment an AWS user sets (keys, region), here with boto3's
    Bedrock endpoint pointed at the fake; no profile, no instance metadata."""
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": "fake/secret/for/tests/only/0000000000000",
            "AWS_REGION_NAME": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL_BEDROCK": url, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials"}


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


def prompt_of(request: dict[str, Any]) -> str:
    """The text of an Anthropic or Converse request (system, then the messages), which identifies a call in these tests."""
    return "\n".join([*_texts(request.get("system")), *(t for m in request.get("messages", []) for t in _texts(m.get("content")))])


def default_reply(prompt: str) -> str:
    return "A" if hashlib.sha256(prompt.encode()).digest()[0] % 2 == 0 else "B"


def fail_every(n: int) -> Callable[[str], bool]:
    """Fails the prompts whose hash is 0 modulo ``n`` (about 1 in n)."""
    return lambda prompt: int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % n == 0


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeBedrockServer(LocalServer):
    def __init__(self, *, delay: float = 0.5, reply: Callable[[str], str] = default_reply, fail: Callable[[str], bool] = lambda p: False,
                 page_size: int = 100):
        self.delay, self.reply, self.fail, self.page_size = delay, reply, fail, page_size
        self.drop_create_responses = 0  # this many of the next creates make the job, then hang up without answering
        self.finished_before_stop = 0  # records a stopped job has finished (and writes); 0: it writes nothing
        self.failing_lists = 0  # this many of the next listings of jobs answer 500
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # ARN -> the job as Bedrock shows it, + private "_at"
        self.roles: list[str] = []  # the roleArn of each job created
        self.unauthorized = 0
        super().__init__(self._handler(), 0)

    @property
    def url(self) -> str:
        return self.root

    # --- the service's behaviour -----------------------------------------------

    def answer(self, request: dict[str, Any], model: str) -> dict[str, Any]:
        """The model's answer, in the shape its request asks for (Anthropic's Messages, else Converse)."""
        prompt = prompt_of(request)
        text, words = self.reply(prompt), len(prompt.split())
        if "anthropic_version" in request:
            return {"id": "msg_" + hashlib.sha256(prompt.encode()).hexdigest()[:12], "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                    "usage": {"input_tokens": words, "output_tokens": 1}}
        return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
                "usage": {"inputTokens": words, "outputTokens": 1, "totalTokens": words + 1}, "metrics": {"latencyMs": 1}}

    def add_job(self, input_uri: str, model: str = "anthropic.claude-3-haiku-20240307-v1:0", name: str = "someone-elses-job",
                output_uri: str | None = None, role: str = ROLE_ARN) -> dict[str, Any]:
        """Creates a job (litellm's create, or a test's job of another user), counting the prompts it holds."""
        bucket, key = input_uri[5:].split("/", 1)
        rows = [json.loads(line) for line in self.objects.get((bucket, key), b"").decode().splitlines() if line.strip()]
        self.submitted.update(prompt_of(r["modelInput"]) for r in rows)
        arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-invocation-job/{'job%09d' % len(self.jobs)}"
        now = time.time()
        job = {"jobArn": arn, "jobName": name, "modelId": model, "roleArn": role, "status": "Submitted", "submitTime": _iso(now),
               "lastModifiedTime": _iso(now), "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri}},
               "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri or f"s3://{bucket}/outputs/{name}/"}},
               "timeoutDurationInHours": 24, "_at": now}
        self.jobs[arn] = job
        return job

    def _advance(self, job: dict[str, Any]) -> None:
        """Submitted, then InProgress at the first look, Completed ``delay`` seconds after creation; a stop ends it without output."""
        status = job["status"]
        if status == "Stopping":
            job["status"] = "Stopped"
            if self.finished_before_stop:  # the records it finished are written where a completed job's output goes
                self._write_output(job, self.finished_before_stop)
        if status not in ("Submitted", "InProgress"):
            return
        if time.time() - job["_at"] < self.delay:
            job["status"] = "InProgress"
            return
        failed, rows = self._write_output(job)
        job.update(status="Completed", endTime=_iso(time.time()), lastModifiedTime=_iso(time.time()), totalRecordCount=len(rows),
                   processedRecordCount=len(rows), successRecordCount=len(rows) - failed, errorRecordCount=failed)

    def _write_output(self, job: dict[str, Any], first: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Writes the job's output (of its ``first`` records only, for a job stopped early); (errors, rows)."""
        input_uri = job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"]
        bucket, key = input_uri[5:].split("/", 1)
        rows = []
        for line in reversed(self.objects[(bucket, key)].decode().splitlines()[:first]):
            rec = json.loads(line)
            if self.fail(prompt_of(rec["modelInput"])):
                rows.append({"recordId": rec["recordId"], "modelInput": rec["modelInput"],
                             "error": {"errorCode": 400, "errorMessage": "fake validation failure of this record"}})
            else:
                rows.append({"recordId": rec["recordId"], "modelInput": rec["modelInput"],
                             "modelOutput": self.answer(rec["modelInput"], job["modelId"])})
        out_bucket, prefix = job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"][5:].split("/", 1)
        out_key = f"{prefix.rstrip('/')}/{job['jobArn'].rsplit('/', 1)[-1]}/{key.rsplit('/', 1)[-1]}.out"
        self.objects[(out_bucket, out_key)] = "\n".join(json.dumps(r) for r in rows).encode()
        return sum("error" in r for r in rows), rows

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _job(self, ident: str) -> dict[str, Any] | None:
        return self.jobs.get(ident) or next((j for a, j in self.jobs.items() if a.endswith("/" + ident)), None)

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
                if status == 200 and self.command == "PUT":
                    self.send_header("ETag", '"fake-etag"')
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
                if (self.headers.get("Authorization") or "").startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"):
                    return True
                server.unauthorized += 1
                self._send(403, {"message": "The security token included in the request is invalid."})
                return False

            def do_PUT(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                body = self._body()
                with server.lock:
                    if not self._authorized():
                        return None
                    server.requests["PUT object"] += 1
                    bucket, key = u.path.lstrip("/").split("/", 1)
                    server.objects[(bucket, unquote(key))] = body
                    return self._send(200, raw=b"")

            def do_POST(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                body = self._body()
                with server.lock:
                    if not self._authorized():
                        return None
                    if u.path == "/model-invocation-job":
                        server.requests["POST jobs"] += 1
                        req = json.loads(body)
                        server.roles.append(req["roleArn"])
                        job = server.add_job(req["inputDataConfig"]["s3InputDataConfig"]["s3Uri"], req["modelId"], req["jobName"],
                                             req["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"], req["roleArn"])
                        if server.drop_create_responses > 0:  # the job exists, but its creator never hears of it
                            server.drop_create_responses -= 1
                            self.close_connection = True
                            return None
                        return self._send(200, {"jobArn": job["jobArn"]})
                    if u.path.startswith("/model-invocation-job/") and u.path.endswith("/stop"):
                        server.requests["POST stop"] += 1
                        job = server._job(unquote(u.path[len("/model-invocation-job/") : -len("/stop")]))
                        if job is None:
                            return self._send(404, {"message": "no such job"})
                        server._advance(job)
                        if job["status"] not in ("Submitted", "InProgress"):
                            return self._send(400, {"message": f"job is {job['status']}"})
                        job["status"] = "Stopping"
                        return self._send(200, {})
                    if u.path.startswith("/model/") and u.path.rsplit("/", 1)[-1] in ("converse", "invoke"):
                        req = json.loads(body)
                        server.requests[f"POST {u.path.rsplit('/', 1)[-1]}"] += 1
                        server.online[prompt_of(req)] += 1
                        return self._send(200, server.answer(req, unquote(u.path.split("/")[2])))
                self._send(404, {"message": f"no route {u.path}"})

            def do_GET(self) -> None:  # noqa: N802
                u = urlparse(self.path)
                with server.lock:
                    if not self._authorized():
                        return None
                    if u.path == "/model-invocation-jobs":
                        server.requests["GET list"] += 1
                        if server.failing_lists > 0:
                            server.failing_lists -= 1
                            return self._send(500, {"message": "fake outage"})
                        args = {k: v[0] for k, v in parse_qs(u.query).items()}
                        after = datetime.datetime.fromisoformat(args["submitTimeAfter"].replace("Z", "+00:00")).timestamp() \
                            if "submitTimeAfter" in args else 0.0
                        jobs = sorted((j for j in server.jobs.values() if j["_at"] >= after), key=lambda j: j["_at"],
                                      reverse=args.get("sortOrder") != "Ascending")
                        start = int(args.get("nextToken", "0"))
                        size = min(int(args.get("maxResults", "100")), server.page_size)
                        page: dict[str, Any] = {"invocationJobSummaries": [server._public(j) for j in jobs[start : start + size]]}
                        if start + size < len(jobs):
                            page["nextToken"] = str(start + size)
                        return self._send(200, page)
                    if u.path.startswith("/model-invocation-job/"):
                        server.requests["GET job"] += 1
                        job = server._job(unquote(u.path[len("/model-invocation-job/") :]))
                        if job is None:
                            return self._send(404, {"message": "no such job"})
                        server._advance(job)
                        return self._send(200, server._public(job))
                    server.requests["GET object"] += 1
                    bucket, _, key = u.path.lstrip("/").partition("/")
                    data = server.objects.get((bucket, unquote(key)))
                    if data is None:
                        return self._send(404, raw=b"<Error><Code>NoSuchKey</Code></Error>")
                    return self._send(200, raw=data)

        return Handler


class _RoutedClients:
    """litellm's cache of HTTP clients, giving its Bedrock code (the job's
    create, the S3 upload and download, whose AWS hosts litellm writes itself)
    a client that sends AWS's hosts to the fake instead; one per event loop,
    as litellm keeps them. Everything else goes to the real cache."""

    def __init__(self, inner: Any, url: str):
        self.inner, self.target = inner, urlparse(url)
        self.clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    async def _rewrite(self, request: Any) -> None:
        if request.url.host.endswith(".amazonaws.com"):
            request.url = request.url.copy_with(scheme="http", host=self.target.hostname, port=self.target.port)

    def get_cache(self, key: str, *args: Any, **kwargs: Any) -> Any:
        if key.startswith("async_httpx_client") and key.endswith("bedrock"):
            from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

            loop = asyncio.get_running_loop()
            if loop not in self.clients:
                self.clients[loop] = AsyncHTTPHandler(event_hooks={"request": [self._rewrite]})
            return self.clients[loop]
        return self.inner.get_cache(key, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def route_litellm_here(url: str, setattr_: Callable[[Any, str, Any], None] = setattr) -> None:
    """Points what litellm sends to AWS hosts it writes itself (Bedrock's
    control plane for a create, S3 for files) at this server; boto3's calls
    follow ``AWS_ENDPOINT_URL_BEDROCK`` (:func:`aws_env`). Test code only
    (``setattr_``: pytest's monkeypatch.setattr in a test, plain setattr in a
    child process)."""
    import litellm
    from litellm.caching.llm_caching_handler import LLMClientCache

    inner = getattr(litellm, "in_memory_llm_clients_cache", None) or LLMClientCache()  # litellm may make it on first use
    setattr_(litellm, "in_memory_llm_clients_cache", _RoutedClients(inner, url))
