"""Batch execution: a role's calls through its provider's batch API
(``models.<role>.execution: batch``), at the provider's batch price and without
fighting its rate limits, in exchange for answers that come within the batch's
completion window (OpenAI: 24 hours) instead of seconds.

Per dependency level, the runner hands the calls of batch roles that the
cache does not answer to :func:`run_batched`. Their requests are written as
JSONL in the OpenAI batch format (``custom_id`` = the call key, ``POST
/v1/chat/completions``, and as body the very request the online path sends:
the Caller's sampling, seed and structured-output fields), uploaded and
submitted through litellm's files and batches API (``acreate_file``,
``acreate_batch``, ``aretrieve_batch``, ``afile_content``) to the role's
provider and ``api_base``, at most ``batch_size`` calls per batch.

Kill safety. Before uploading, a batch is recorded in the cache database with
the keys it holds (see execute.cache, ``batch_claim``); the provider's id is
added once it answers, and the batch carries that record's id in its metadata,
so a run killed between the two finds it again by listing the provider's
batches. A call in a live batch is never submitted again: a rerun (or a second
process) polls the recorded batches instead, every ``batch_poll`` seconds.
A finished batch's answers are stored in the call cache, with their usage and
batch-priced cost, in the same transaction that marks it collected.

Failures. A line the provider answered with an error, an empty answer, or one
cut at ``max_tokens`` that a parser needs whole is sent again online, in the
same run, through the ordinary path (its retries, its reasons when it still
fails); waiting a second completion window for a few lines would cost far more
time than the online price of those lines. Calls of a batch that ended
cancelled, expired or failed without a line for them fail (reason
``transport``), and a rerun submits them in a new batch. Re-asks after an
unparseable answer go online too: each depends on the answer before it.

A role switched to ``execution: online`` while a live batch holds some of its
calls does not send those online (it would pay for them twice): the run says
so, waits for that batch and collects it; once the batch is cancelled (``persona-exp
batches --cancel``) the calls it did not answer go online.

Vertex AI and Bedrock batches take the same file; what they need beyond it
(buckets, their credentials, finding a job, reading Bedrock's answers) is in
:mod:`persona_exp.execute.batch_clouds`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable

from persona_exp.errors import SpecError
from persona_exp.execute.batch_clouds import (
    BEDROCK,
    FIND_PAGES,
    LookupCutShort,
    VERTEX,
    arn_region,
    bedrock_file,
    bedrock_job_reading,
    bedrock_settings,
    find_vertex,
    from_bedrock,
    require_google_auth,
    staged_in,
    vertex_checks,
    vertex_placeholder,
)
from persona_exp.execute.cache import CallCache, process_alive
from persona_exp.execute.llm import Caller, classify, litellm, scrub
from persona_exp.execute.prices import price
from persona_exp.execute.progress import Progress
from persona_exp.plan.plan import Call
from persona_exp.spec.models import BATCH_PROVIDERS, ModelConfig

ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"  # the only completion window OpenAI and Azure offer
TERMINAL = ("completed", "failed", "expired", "cancelled")
STALE_SUBMIT = 300.0  # seconds: a "submitting" record of another machine this old is looked up at the provider


@dataclass(frozen=True)
class Target:
    """Where a role's batches go: provider, endpoint, the model named in each
    request line, and the name of the variable holding the key (never the key)."""

    provider: str
    model: str
    role: str
    api_base: str | None = None
    api_version: str | None = None
    key_env: str | None = None
    bucket: str | None = None  # Vertex AI, Bedrock: where its batch files are uploaded (needed to submit only, so not recorded)
    role_arn: str | None = None  # Bedrock: the IAM role its jobs assume (needed to submit only, so not recorded)

    def info(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "role": self.role, "api_base": self.api_base,
                "api_version": self.api_version, "key_env": self.key_env}

    def kwargs(self) -> dict[str, Any]:
        """litellm's arguments for this endpoint; the key is read from the environment now."""
        out: dict[str, Any] = {"custom_llm_provider": self.provider}
        out.update({k: v for k, v in (("api_base", self.api_base), ("api_version", self.api_version)) if v})
        if self.provider == VERTEX:  # Google credentials from the environment, never an api_key (see the module's docstring)
            if self.bucket:
                out["gcs_bucket_name"] = self.bucket
        elif self.provider == BEDROCK:  # AWS credentials and region from the environment, never an api_key
            if self.bucket:
                out["s3_bucket_name"] = self.bucket
        elif self.key_env:
            out["api_key"] = os.environ.get(self.key_env, "")
        return out

    @classmethod
    def of_record(cls, row: dict[str, Any]) -> "Target":
        return cls(row["provider"], row["model"], row["role"], row["api_base"], row["api_version"], row["key_env"])


def target(role: str, cfg: ModelConfig) -> Target:
    """The role's batch endpoint, as litellm resolves its model."""
    try:
        name, provider, _, _ = litellm().get_llm_provider(cfg.model, api_base=cfg.api_base)
    except Exception:  # noqa: BLE001 - litellm raises its BadRequestError
        raise SpecError(f"models.{role}: litellm knows no provider for {cfg.model!r}, so its calls cannot go by batch.") from None
    if provider not in BATCH_PROVIDERS:
        raise SpecError(f"models.{role}.execution: batch goes through litellm's files and batches API, which persona-exp uses for "
                        f"{', '.join(BATCH_PROVIDERS)}; {cfg.model} is served by {provider}: use execution: online for it.")
    if provider == VERTEX:
        vertex_checks(role, cfg)
        return Target(provider, name, role, cfg.api_base, cfg.api_version, None, cfg.batch_bucket)
    if provider == BEDROCK:
        model, arn = bedrock_settings(role, cfg, name)
        return Target(BEDROCK, model, role, None, None, None, cfg.batch_bucket, arn)
    return Target(provider, name, role, cfg.api_base, cfg.api_version, cfg.api_key_env)


# --- the provider, through litellm -------------------------------------------


async def submit(t: Target, data: bytes, local_id: str, on_file: Any = None) -> Any:
    """Uploads a JSONL file and creates its batch; returns the batch object.
    ``on_file(file_id)`` is told the upload's id before the batch is created."""
    lt = litellm()
    f = await lt.acreate_file(file=(f"{local_id}.jsonl", data), purpose="batch", **t.kwargs())
    if on_file is not None:
        on_file(f.id)
    # Bedrock: litellm picks its batch code by the model, and the job's role is needed to create it
    extra = {"model": f"{BEDROCK}/{t.model}", "aws_batch_role_arn": t.role_arn} if t.provider == BEDROCK else {}
    return await lt.acreate_batch(completion_window=WINDOW, endpoint=ENDPOINT, input_file_id=f.id, metadata={"persona_exp": local_id},
                                  **t.kwargs(), **extra)


async def retrieve(t: Target, batch_id: str) -> Any:
    # litellm_metadata keeps litellm's logging from downloading the output file to price it: we read it ourselves
    return await litellm().aretrieve_batch(batch_id=batch_id, litellm_metadata={"batch_ignore_default_logging": True}, **t.kwargs())


async def content(t: Target, file_id: str, batch_id: str | None = None) -> bytes:
    """A file's bytes; a Bedrock output file turned into OpenAI-format lines
    (``batch_id``: the job's ARN, which names the region its bucket is in)."""
    kwargs = t.kwargs()
    if t.provider == VERTEX:  # litellm reads only files of the bucket (and folder) it is told: the one the file is in
        kwargs["gcs_bucket_name"] = staged_in(file_id)
    if t.provider == BEDROCK:
        return from_bedrock(await bedrock_file(file_id, arn_region(batch_id), kwargs))
    resp = await litellm().afile_content(file_id=file_id, **kwargs)
    return resp.content if hasattr(resp, "content") else bytes(resp)


async def cancel(t: Target, batch_id: str) -> Any:
    return await litellm().acancel_batch(batch_id=batch_id, **t.kwargs())


async def find(t: Target, local_id: str, since: float, input_file: str | None = None) -> Any | None:
    """The provider's batch carrying ``local_id`` in its metadata (newest
    first, back to a minute before ``since``), or None. Vertex AI keeps no
    metadata: there, the job reading ``input_file``."""
    if t.provider == VERTEX:
        return await find_vertex(t.kwargs(), input_file)
    if t.provider == BEDROCK:  # litellm cannot list Bedrock jobs: listed with boto3 (newest first, back to ten minutes before since)
        arn = await asyncio.to_thread(bedrock_job_reading, input_file, since - 600) if input_file else None
        return None if arn is None else await retrieve(t, arn)
    after = None
    for _ in range(FIND_PAGES):
        page = await litellm().alist_batches(after=after, limit=100, **t.kwargs())
        data = list(getattr(page, "data", None) or [])
        for b in data:
            if (getattr(b, "metadata", None) or {}).get("persona_exp") == local_id:
                return b
        if not data or not getattr(page, "has_more", False) or min(int(getattr(b, "created_at", 0) or 0) for b in data) < since - 60:
            return None
        after = data[-1].id
    raise LookupCutShort()


def output_file(t: Target, b: Any) -> str | None:
    """The batch's output file, where there is one. litellm makes one up for a
    Vertex AI job that wrote none (the output folder, which is the input's, +
    ``/predictions.jsonl``); the job's own is in a subfolder of it. For a
    Bedrock job that was stopped (or failed, or expired) litellm names none,
    but Bedrock writes what it finished where a completed job's output goes,
    which litellm's metadata names: those answers are read, not paid twice."""
    if t.provider == VERTEX and vertex_placeholder(b):
        return None
    if t.provider == BEDROCK and b.status != "completed":
        return (getattr(b, "metadata", None) or {}).get("output_file_uri") or None
    return getattr(b, "output_file_id", None) or None


def _missing(exc: BaseException) -> bool:
    """Whether a download failed because the file is not there (HTTP 404, S3's NoSuchKey)."""
    return getattr(exc, "status_code", None) == 404 or "NoSuchKey" in str(exc) or "Not Found" in str(exc)


def read_lines(data: bytes) -> dict[str, dict[str, Any]]:
    """custom_id -> {"body": the chat completion} or {"error": why} from an
    output or error file."""
    out: dict[str, dict[str, Any]] = {}
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            key, resp, err = line["custom_id"], line.get("response") or {}, line.get("error")
            status = resp.get("status_code")
            if err is None and status == 200 and isinstance(resp.get("body"), dict):
                out[key] = {"body": resp["body"]}
            else:
                detail = err or (resp.get("body") or {}).get("error") or resp.get("body")
                message = detail.get("message") if isinstance(detail, dict) else detail
                out[key] = {"error": scrub(f"status {status}: {message}" if status else str(message))[:300]}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line that cannot be read answers nothing: its call goes online (or, in a batch cut short, in the next one)
    return out


def _answer_of(body: Any) -> tuple[str, Any, int, int, Any] | None:
    """(text, finish_reason, prompt and completion tokens, model) of a chat
    completion body, or None when it is not one (read as a failed line)."""
    try:
        choice = body["choices"][0]
        text, usage = choice["message"]["content"], body.get("usage") or {}
        return (text if isinstance(text, str) else "", choice.get("finish_reason"), int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0), body.get("model"))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def _owner_gone(row: dict[str, Any]) -> bool:
    """Whether the process that was submitting ``row`` cannot finish it: gone
    from this machine, or on another machine and silent for STALE_SUBMIT (an
    hour on this one, where its process id may have been reused)."""
    host, _, rest = row["owner"].partition(":")
    pid = rest.partition(":")[0]
    silent = time.time() - row["updated_at"]
    if host == socket.gethostname() and pid.isdigit():
        return not process_alive(int(pid)) or silent > 3600
    return silent > STALE_SUBMIT


# --- running a level's batch calls ---------------------------------------------


async def run_batched(runner: Any, calls: list[Call], callers: dict[str, Caller], results: dict[str, Any], progress: Progress,
                      result: type) -> list[Call]:
    """Answers ``calls`` (cache misses of batch roles, their inputs answered)
    by batches, filling ``results`` with ``result`` objects (the runner's
    CallResult: this module sits below the runner, which calls it); returns
    the calls to send online (failed lines)."""
    by_role: dict[str, list[Call]] = {}
    for c in calls:
        by_role.setdefault(c.role, []).append(c)
    done = await asyncio.gather(*(_RoleBatches(runner, role, cs, callers[role], results, progress, result).run() for role, cs in by_role.items()))
    return [c for online in done for c in online]


def held_by_batches(runner: Any, calls: list[Call]) -> list[Call]:
    """Those of ``calls`` (of online roles) that a live batch holds, said on
    stderr. They are collected from that batch, not sent online: a role
    switched to ``execution: online`` while its batch runs would otherwise pay
    for them twice. Once that batch is cancelled and collected they go online."""
    held = runner.cache.batches_holding(c.key for c in calls) if calls else {}
    if not held:
        return []
    per_batch: dict[str, int] = {}
    for local_id in held.values():
        per_batch[local_id] = per_batch.get(local_id, 0) + 1
    for local_id, n in sorted(per_batch.items()):
        row = runner.cache.batch(local_id) or {}
        name = row.get("batch_id") or local_id
        print(f"{n} calls are in live batch {name}; waiting for it; cancel with persona-exp batches --cancel {name} to send them online.",
              file=sys.stderr, flush=True)
    return [c for c in calls if c.key in held]


class _RoleBatches:
    def __init__(self, runner: Any, role: str, calls: list[Call], caller: Caller, results: dict[str, Any], progress: Progress, result: type):
        self.runner, self.role, self.caller, self.results, self.progress, self.result = runner, role, caller, results, progress, result
        self.cfg = runner.models[role]
        self.cache: CallCache = runner.cache
        self.calls = {c.key: c for c in calls}
        self.pending = set(self.calls)  # not settled by this process yet
        self.online: list[Call] = []
        # an online role's calls come here only while a live batch holds them: collected from it, never submitted anew
        self.submits = self.cfg.execution == "batch"
        self.target = target(role, self.cfg) if self.submits else None
        self.request = Caller(self.cfg).request  # a local one: the role's caller may be another executor's stand-in
        self.price = price(self.cfg.model, batch=True)
        self.seen: dict[str, str] = {}  # local id -> last state shown
        self.errors: dict[str, int] = {}  # local id -> polls in a row that failed

    async def run(self) -> list[Call]:
        """Submits the calls in no live batch, polls the live ones, and waits
        ``batch_poll`` whenever a round changed nothing; the cache is looked at
        again only when another process may have answered some (a batch
        collected elsewhere, a call that could not be claimed)."""
        while self.pending:
            live = self.cache.batches_holding(self.pending)
            free = [k for k in self.calls if k in self.pending and k not in live]  # in plan order
            changed = False
            if free and not self.submits:  # their batch was cancelled or collected meanwhile: online now
                for k in free:
                    self.pending.discard(k)
                    self.online.append(self.calls[k])
                free = []
            if free:
                changed = await self._submit(free)
                live = self.cache.batches_holding(self.pending)
            for local_id in sorted(set(live.values())):
                changed |= await self._poll(local_id)
            if changed:
                await self._from_cache()
            elif self.pending:
                await asyncio.sleep(self.cfg.batch_poll)
        return self.online

    async def _from_cache(self) -> None:
        """Calls another process (or an earlier run's collection) answered: cached."""
        for key, hit in self.cache.get_many(self.pending).items():
            if hit.response.strip():
                self.pending.discard(key)
                await self.runner._cached(self.calls[key], hit, self.caller, self.results, self.progress)

    def _line(self, c: Call) -> str:
        outputs = {k: self.results[k].output() for k in c.inputs.values()}
        request = self.request(c.replicate, self.runner._asks(c)["response_format"])
        body = {"model": self.target.model, "messages": c.render(outputs),
                **{k: v for k, v in request.items() if k not in ("api_base", "api_version", "api_key")}}
        return json.dumps({"custom_id": c.key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False)

    async def _submit(self, keys: list[str]) -> bool:
        """Claims and submits ``keys`` in batches of batch_size; True when some
        could not be claimed (answered or submitted by another process meanwhile)."""
        budget = self.runner.budget
        short = False
        for start in range(0, len(keys), self.cfg.batch_size):
            chunk = keys[start : start + self.cfg.batch_size]
            if budget is not None and budget.reached:
                for k in chunk:
                    budget.stopped += 1
                    self._fail(k, budget.message(), "budget")
                continue
            local_id = f"pe-{secrets.token_hex(8)}"
            claimed = self.cache.batch_claim(local_id, self.target.info(), chunk)
            short |= len(claimed) < len(chunk)
            if not claimed:
                continue
            data = "\n".join(self._line(self.calls[k]) for k in claimed).encode() + b"\n"
            try:
                b = await submit(self.target, data, local_id, lambda fid: self.cache.batch_update(local_id, input_file=fid))
            except Exception as exc:  # noqa: BLE001 - provider errors come in many types
                uploaded = (self.cache.batch(local_id) or {}).get("input_file")
                found, unknown = await self._lookup(self.target, local_id, time.time() - 60, uploaded)
                if found is None:
                    message = scrub(f"{type(exc).__name__}: {exc}")[:400]
                    kind = classify(exc)
                    status = getattr(exc, "status_code", None)
                    refused = isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429)  # it made no batch
                    if uploaded and unknown and not refused:  # the provider may hold the batch and cannot be asked: kept, so that no run submits its calls again
                        self.cache.batch_update(local_id, state="lost", note=message)
                        message += (" (the provider could not be asked whether it created the batch; a rerun asks again before submitting its "
                                    f"calls; persona-exp batches --cancel {local_id} gives it up)")
                        kind = "transport"
                    else:
                        self.cache.batch_update(local_id, state="abandoned", note=message)
                    for k in claimed:
                        self._fail(k, f"submitting the batch failed: {message}", kind if kind in ("auth", "rejected") else "transport")
                    continue
                b = found
            self.cache.batch_update(local_id, batch_id=b.id, state=b.status)
            self._show(local_id, b)
        return short

    async def _lookup(self, t: Target, local_id: str, since: float, input_file: str | None) -> tuple[Any | None, bool]:
        """The batch a submission cut short may have created, or None; and
        whether the provider could not be asked (then None says nothing: the
        batch may exist, and its calls must not be submitted again)."""
        try:
            return await find(t, local_id, since, input_file), False
        except Exception:  # noqa: BLE001 - provider errors come in many types
            return None, True

    async def _poll(self, local_id: str) -> bool:
        """One look at a live batch (collecting it once it has ended); True
        when that changed which calls are pending or free."""
        row = self.cache.batch(local_id)
        if row is None or row["collected_at"] is not None or row["state"] == "abandoned":
            return True  # collected (or given up) by another process: its answers are in the cache
        if row["batch_id"] is None:  # submission cut short (lost: its answer lost), or under way in another process
            if row["state"] != "lost" and not _owner_gone(row):
                return False
            found, unknown = await self._lookup(Target.of_record(row), local_id, row["created_at"], row["input_file"])
            if found is None and unknown and row["input_file"]:
                return self._look_failed(local_id, row, "it could not be looked up at the provider")
            if found is None:
                self.cache.batch_update(local_id, state="abandoned", note="its submission was cut short before the provider took it")
                return True
            self.cache.batch_update(local_id, batch_id=found.id, state=found.status)
            row = self.cache.batch(local_id)
        t = Target.of_record(row)
        try:
            b = await retrieve(t, row["batch_id"])
            if b.status in TERMINAL:
                lines = await self._lines(t, b)
        except Exception as exc:  # noqa: BLE001 - a failed look (or download) is retried at the next poll
            return self._look_failed(local_id, row, f"batch {row['batch_id']} could not be looked at ({scrub(f'{type(exc).__name__}: {exc}')[:300]})",
                                     classify(exc))
        self.errors.pop(local_id, None)
        counts = getattr(b, "request_counts", None)
        self.cache.batch_update(local_id, state=b.status, answered=int(getattr(counts, "completed", 0) or 0),
                                failed=int(getattr(counts, "failed", 0) or 0))
        self._show(local_id, b)
        if b.status not in TERMINAL:
            return False
        await self._collect(local_id, b, lines, t)
        return True

    def _look_failed(self, local_id: str, row: dict[str, Any], why: str, kind: str = "transport") -> bool:
        """A look at a recorded batch failed: tried again at the next poll, and
        after max_retries failures in a row its pending calls fail for this
        run (the record stays: a rerun looks again, and never resubmits them)."""
        self.errors[local_id] = self.errors.get(local_id, 0) + 1
        if self.errors[local_id] <= self.cfg.max_retries:
            return False
        for k in self.cache.batch_keys(local_id):
            if k in self.pending:
                self._fail(k, f"{why}; it is still recorded, and a rerun looks at it again (persona-exp batches --cancel {local_id} gives it up)",
                           "auth" if kind == "auth" else "transport")
        return True

    def _show(self, local_id: str, b: Any) -> None:
        if self.seen.get(local_id) != b.status:
            self.seen[local_id] = b.status
            self.progress.step(f"{self.role}: batch {b.id} {b.status}")

    async def _lines(self, t: Target, b: Any) -> dict[str, dict[str, Any]]:
        """The lines of an ended batch's output and error files."""
        lines: dict[str, dict[str, Any]] = {}
        for fid in (output_file(t, b), getattr(b, "error_file_id", None)):
            if fid:
                try:
                    lines.update(read_lines(await content(t, fid, b.id)))
                except Exception as exc:  # noqa: BLE001 - provider errors come in many types
                    if b.status == "completed" or not _missing(exc):
                        raise
                    # a job that ended early may have written nothing: no lines
        return lines

    async def _collect(self, local_id: str, b: Any, lines: dict[str, dict[str, Any]], t: Target) -> None:
        """Stores an ended batch's answers and settles its calls of this level."""
        answers, again, lost = [], [], []
        for key in self.cache.batch_keys(local_id):
            line = lines.get(key)
            c = self.calls.get(key)
            whole = c is not None and c.parser is not None
            got = _answer_of((line or {}).get("body"))
            if got is not None and got[0].strip() and not ((whole or c is None) and got[1] == "length"):
                text, _, pt, ct, model = got
                cost = None if self.price is None else pt * self.price[0] + ct * self.price[1]
                answers.append((key, text, {"prompt_tokens": pt, "completion_tokens": ct, "cost": cost, "batch": b.id}, str(model or self.cfg.model)))
            elif line is not None or b.status == "completed":
                again.append(key)  # a failed, empty or cut line (or none in a completed batch): online
            else:
                lost.append(key)
        self.cache.batch_collect(local_id, answers, state=b.status, answered=len(answers), failed=len(again) + len(lost),
                                 output_file=output_file(t, b), error_file=getattr(b, "error_file_id", None))
        await asyncio.gather(*(self._answered(key, text, usage, model) for key, text, usage, model in answers if key in self.pending))
        for key in again:
            if key in self.pending:
                self.pending.discard(key)
                self.online.append(self.calls[key])
        for key in lost:
            if key in self.pending and not self.submits:  # an online role's call whose batch was cancelled: online now
                self.pending.discard(key)
                self.online.append(self.calls[key])
            elif key in self.pending:
                self._fail(key, f"batch {b.id} ended {b.status} without answering it; a rerun submits it in a new batch", "transport")

    async def _answered(self, key: str, text: str, usage: dict[str, Any], model: str) -> None:
        self.pending.discard(key)
        c = self.calls[key]
        r = self.result(key, c.step, c.role, "ok", False, text, None, model, usage["prompt_tokens"], usage["completion_tokens"], usage["cost"],
                       attempts=1)
        self.results[key] = r = await self.runner._finish(c, r, self.caller, self.results)
        if self.runner.budget is not None:
            self.runner.budget.spend(r.cost)
        self.progress.advance(failed=not r.ok, tokens=r.prompt_tokens + r.completion_tokens, cost=r.cost)

    def _fail(self, key: str, error: str, reason: str) -> None:
        self.pending.discard(key)
        c = self.calls[key]
        self.results[key] = self.result(key, c.step, c.role, "skipped" if reason == "budget" else "failed", False, error=error, reason=reason)
        self.progress.advance(failed=True)


# --- the `batches` command's side ----------------------------------------------


def cancel_recorded(cache: CallCache, ref: str) -> dict[str, Any]:
    """Cancels a recorded batch at its provider (by local or provider id) and
    records the state it reports; its calls become free for a new batch once
    it is collected (a rerun collects what it answered before the cancel)."""
    from persona_exp.errors import InvalidArgumentError

    row = cache.batch(ref)
    if row is None:
        known = ", ".join(r["batch_id"] or r["local_id"] for r in cache.batches()[-5:]) or "none"
        raise InvalidArgumentError(f"--cancel {ref}: no batch of this cache has that id (the latest: {known}); `persona-exp batches` lists them.")
    if row["batch_id"] is None and row["state"] == "lost":  # the provider may hold it: looked for first, to cancel it there
        if row["provider"] == VERTEX:
            require_google_auth(f"--cancel {ref}")
        try:
            found = asyncio.run(find(Target.of_record(row), row["local_id"], row["created_at"], row["input_file"]))
        except Exception:  # noqa: BLE001 - provider errors come in many types
            found = False
        if found:
            cache.batch_update(row["local_id"], batch_id=found.id, state=found.status)
            row = cache.batch(row["local_id"])
    if row["batch_id"] is None:
        note = ("given up by --cancel: its submission's answer was lost and the provider could not be asked whether it holds the batch "
                "(check there: it may still run and be paid for)" if row["state"] == "lost" else "cancelled before the provider took it")
        cache.batch_update(row["local_id"], state="abandoned", note=note)
        return {**row, "state": "abandoned", "note": note}
    if row["collected_at"] is not None or row["state"] in TERMINAL:
        raise InvalidArgumentError(f"--cancel {ref}: batch {row['batch_id']} has ended ({row['state']}); there is nothing to cancel.")
    if row["provider"] == VERTEX:
        require_google_auth(f"--cancel {ref}")
    try:
        b = asyncio.run(cancel(Target.of_record(row), row["batch_id"]))
    except Exception as exc:  # noqa: BLE001 - provider errors come in many types
        from persona_exp.errors import ExecutionError

        key = f" (its key is read from {row['key_env']})" if row["key_env"] else ""
        raise ExecutionError(f"--cancel {ref}: the provider {row['provider']} at {row['api_base'] or 'its default endpoint'}{key} did not "
                             f"cancel batch {row['batch_id']}: {scrub(f'{type(exc).__name__}: {exc}')[:300]}") from None
    cache.batch_update(row["local_id"], state=b.status)
    return {**row, "state": b.status}


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows `persona-exp batches` shows (no key: the table holds none)."""
    out = []
    for r in rows:
        out.append({"batch": r["batch_id"] or r["local_id"], "role": r["role"], "provider": r["provider"], "model": r["model"],
                    "endpoint": r["api_base"] or "(provider default)", "state": r["state"], "calls": r["calls"], "answered": r["answered"],
                    "failed": r["failed"], "collected": r["collected_at"] is not None,
                    "created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["created_at"])),
                    "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["updated_at"])), "note": r["note"]})
    return out
