"""What Vertex AI and Bedrock batches need beyond the OpenAI batch format
that :mod:`persona_exp.execute.batch` writes for every provider.

Vertex AI (``vertex_ai/gemini-...``). litellm takes the same OpenAI-format
file, writes it as Gemini requests to the role's ``batch_bucket`` in Cloud
Storage, and turns the job's predictions back into OpenAI-format lines (a
failed row into an error line). Three things differ, and are handled here:
the request lines name the bare model (litellm puts it in the file's path,
from which the job takes its model); credentials are Google's, which litellm
reads from the environment (never an API key: with one, its file calls send
no Authorization header); and a job carries no metadata, so a submission cut
short is found again by the job's input file, the upload's ``gs://`` id,
recorded before the job is created (none recorded: no job can read it). A
job's output file is known only once it has ended; its ``request_counts`` are
never given (the lines are counted instead).

Bedrock (``bedrock/<Claude or Nova model id>``). litellm uploads the same file
to the role's ``batch_bucket`` in S3, rewritten as the model's own requests
(``recordId`` = the call key), and creates a model invocation job, which the
role's ``batch_role_arn`` (or litellm's ``AWS_BATCH_ROLE_ARN``) lets read and
write that bucket; looks and cancels go through boto3 to the region the job's
ARN names. Credentials and region are AWS's, from the environment or a profile
(never an API key). Where it differs: the create needs the model (``bedrock/``
and the bare id, which the request lines name too); a job carries no metadata
and litellm cannot list jobs, so a submission cut short is found by listing
the region's jobs with boto3 and taking the one reading the recorded upload;
and litellm hands the output file back as Bedrock wrote it (each record's
``modelInput`` with a ``modelOutput`` in the model's own shape, or an
``error``), which :func:`from_bedrock` turns into OpenAI-format lines. litellm
reads an output file only from the bucket named by ``AWS_S3_BUCKET_NAME`` in
the environment (a request's bucket is not trusted), which is set to the
file's bucket for the download. The role's ``api_base`` serves its online
calls only: litellm sends batch requests to AWS's regional endpoints.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import weakref
from typing import Any

from persona_exp.errors import SpecError
from persona_exp.execute.llm import installed, litellm
from persona_exp.spec.models import IAM_ROLE_ARN, ModelConfig

VERTEX = "vertex_ai"
VERTEX_EXTRA = "pip install 'persona-exp[vertex]'"
BEDROCK = "bedrock"
BEDROCK_ROLE_ENV = "AWS_BATCH_ROLE_ARN"  # litellm's variable for the role a Bedrock batch job assumes
FIND_PAGES = 20  # pages of 100 batches (jobs) searched for a record whose submission was cut short


class LookupCutShort(Exception):
    """The provider has more batches than a lookup reads: not finding one
    there does not mean it does not exist (the record is kept, see batch._lookup)."""

    def __init__(self) -> None:
        super().__init__(f"the provider lists more than {FIND_PAGES * 100} batches; the one looked for may be among the rest")


# --- Vertex AI -------------------------------------------------------------------


def vertex_checks(role: str, cfg: ModelConfig) -> None:
    """What a Vertex AI batch role needs besides what the spec checks (a
    config may be built in code): its prefix, its bucket and google-auth."""
    if not cfg.model.startswith(f"{VERTEX}/"):
        raise SpecError(f"models.{role}.model: litellm sends {cfg.model} to Vertex AI; for a Vertex batch name it so, "
                        f"vertex_ai/{cfg.model}, and set models.{role}.batch_bucket.")
    if not cfg.batch_bucket:
        raise SpecError(f"models.{role}.batch_bucket: a Vertex AI batch is staged in Cloud Storage; name the bucket (e.g. my-bucket).")
    require_google_auth(f"models.{role}.execution: batch")


def require_google_auth(what: str) -> None:
    """litellm signs Vertex AI requests with google-auth, an optional extra:
    without it, a clear error instead of litellm's ImportError mid-run."""
    if not installed("google.auth"):
        from persona_exp.errors import ExecutionError

        raise ExecutionError(f"{what}: Vertex AI batches need google-auth, which is not installed here; install the extra with "
                             f"{VERTEX_EXTRA} (or pip install 'google-auth>=2') and run again.")


def staged_in(file_id: str) -> str:
    """The ``bucket[/folder]`` of a file litellm staged for Vertex AI
    (``gs://bucket/folder/litellm-vertex-files/...``), or of the job output
    written next to it."""
    path = file_id.removeprefix("gs://")
    head, managed, _ = path.partition("/litellm-vertex-files/")
    return head if managed else path.split("/", 1)[0]


async def find_vertex(kwargs: dict[str, Any], input_file: str | None) -> Any | None:
    """The Vertex AI job whose input is ``input_file`` (each upload has a
    fresh name, so at most one job reads it), over up to FIND_PAGES pages of
    the project's jobs (litellm gives them as a dict page; no order is assumed).
    No recorded upload: no job can have been created from it."""
    if not input_file:
        return None
    token = None
    for _ in range(FIND_PAGES):
        page = await litellm().alist_batches(after=token, limit=100, **kwargs)
        for b in page.get("data") or []:
            if getattr(b, "input_file_id", None) == input_file:
                return b
        token = page.get("next_page_token")
        if not token:
            return None
    raise LookupCutShort()


def vertex_placeholder(b: Any) -> bool:
    """Whether a Vertex AI job's output file is the one litellm makes up for a
    job that wrote none (the output folder, which is the input's, +
    ``/predictions.jsonl``; the job's own is in a subfolder of it)."""
    fid = getattr(b, "output_file_id", None)
    return bool(fid) and fid == f"{str(getattr(b, 'input_file_id', '') or '').rsplit('/', 1)[0]}/predictions.jsonl"


# --- Bedrock ---------------------------------------------------------------------


def bedrock_settings(role: str, cfg: ModelConfig, name: str) -> tuple[str, str]:
    """A Bedrock batch role's bare model id (litellm's route, converse/ or
    invoke/, is no part of it) and the IAM role its jobs assume (the spec's, or
    litellm's variable). Its api_base is not used: litellm sends batch
    requests to AWS's endpoints."""

    if not cfg.model.startswith(f"{BEDROCK}/"):
        raise SpecError(f"models.{role}.model: litellm sends {cfg.model} to Bedrock; for a Bedrock batch name it so, "
                        f"bedrock/{cfg.model}, and set models.{role}.batch_bucket.")
    if not cfg.batch_bucket:  # the spec's check, for a config built in code
        raise SpecError(f"models.{role}.batch_bucket: a Bedrock batch is staged in S3; name the bucket (e.g. my-bucket).")
    arn = cfg.batch_role_arn or os.environ.get(BEDROCK_ROLE_ENV, "").strip()
    if not arn:
        raise SpecError(f"models.{role}.batch_role_arn: a Bedrock batch job runs as an IAM role that may read and write "
                        f"{cfg.batch_bucket}; name it (batch_role_arn: arn:aws:iam::<account>:role/<name>) or export {BEDROCK_ROLE_ENV}=...")
    if not IAM_ROLE_ARN.match(arn):
        raise SpecError(f"models.{role}.batch_role_arn: {BEDROCK_ROLE_ENV} in the environment is {arn!r}, which is not an IAM role's "
                        "ARN (arn:aws:iam::<12-digit account>:role/<name>); set it right, or set batch_role_arn in the spec.")
    return name.removeprefix("converse/").removeprefix("invoke/"), arn


_S3_ENV = "AWS_S3_BUCKET_NAME"
_s3_env_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


async def bedrock_file(file_id: str, region: str | None, kwargs: dict[str, Any]) -> bytes:
    """Downloads a Bedrock batch file. litellm reads only files of the bucket
    that ``AWS_S3_BUCKET_NAME`` names (it trusts no bucket a request gives), so
    that variable names the file's bucket during the download; one download at
    a time, since two roles' buckets may differ. The variable is put back after."""
    bucket = file_id.removeprefix("s3://").split("/", 1)[0]
    if region:
        kwargs = {**kwargs, "aws_region_name": region}
    lock = _s3_env_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        before = os.environ.get(_S3_ENV)
        os.environ[_S3_ENV] = bucket
        try:
            resp = await litellm().afile_content(file_id=file_id, **kwargs)
        finally:
            if before is None:
                os.environ.pop(_S3_ENV, None)
            else:
                os.environ[_S3_ENV] = before
    return resp.content if hasattr(resp, "content") else bytes(resp)


def arn_region(arn: str | None) -> str | None:
    """The region of an ARN (``arn:aws:bedrock:<region>:...``), or None."""
    parts = (arn or "").split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


def from_bedrock(data: bytes) -> bytes:
    """A Bedrock batch output file (``{recordId, modelInput, modelOutput}`` or
    ``{recordId, ..., error}`` per line) as the OpenAI-format lines
    :func:`read_lines` reads. The answer is read from Anthropic's Messages
    shape (``content[].text``, ``stop_reason``, ``usage.input_tokens``) or the
    Converse shape Nova answers in (``output.message.content[].text``,
    ``stopReason``, ``usage.inputTokens``); any other shape, an error, or a
    line that is not JSON becomes an error line (sent again online), never a crash."""
    out = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # no record id to put an error on: its call has no line, and goes online
        if not isinstance(line, dict) or not isinstance(line.get("recordId"), str):
            continue
        try:
            body, why = _bedrock_answer(line)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError):
            body, why = None, (None, "an answer of a shape persona-exp does not read")
        if body is not None:
            response: dict[str, Any] = {"status_code": 200, "body": body}
        else:
            response = {"status_code": why[0], "body": {"error": {"message": why[1]}}}
        out.append(json.dumps({"custom_id": line["recordId"], "response": response, "error": None}))
    return "\n".join(out).encode() + (b"\n" if out else b"")


_STOP = {"max_tokens": "length", "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "content_filtered": "content_filter",
         "guardrail_intervened": "content_filter"}


def _bedrock_answer(line: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[int | None, str]]:
    """One Bedrock record as a chat completion, or (None, (status, why))."""
    err = line.get("error")
    if err is not None:
        if isinstance(err, dict):
            code = err.get("errorCode")
            return None, (code if isinstance(code, int) else None, str(err.get("errorMessage") or err))
        return None, (None, str(err))
    out = line.get("modelOutput")
    if not isinstance(out, dict):
        return None, (None, "Bedrock wrote no modelOutput for this record")
    usage = out.get("usage") if isinstance(out.get("usage"), dict) else {}
    if isinstance(out.get("content"), list):  # Anthropic's Messages API
        parts, stop = out["content"], out.get("stop_reason")
        tokens = usage.get("input_tokens"), usage.get("output_tokens")
    elif isinstance(((out.get("output") or {}).get("message") or {}).get("content"), list):  # Converse (Nova)
        parts, stop = out["output"]["message"]["content"], out.get("stopReason")
        tokens = usage.get("inputTokens"), usage.get("outputTokens")
    else:
        return None, (None, f"an answer of a shape persona-exp does not read (keys {sorted(out)[:8]})")
    text = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    body: dict[str, Any] = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                                     "finish_reason": _STOP.get(str(stop), "stop")}],
                            "usage": {"prompt_tokens": int(tokens[0] or 0), "completion_tokens": int(tokens[1] or 0)}}
    if out.get("model"):
        body["model"] = out["model"]
    return body, (200, "")


def bedrock_job_reading(input_file: str, after: float) -> str | None:
    """The ARN of the job of this region whose input is ``input_file``, or None.
    Region and credentials are resolved as litellm's own Bedrock batch calls do."""
    import boto3
    from litellm.llms.bedrock.batches.transformation import BedrockBatchesConfig

    region = aws_region()
    creds = BedrockBatchesConfig().get_credentials(aws_region_name=region)
    client = boto3.client("bedrock", region_name=region, aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                          aws_session_token=creds.token)
    args: dict[str, Any] = {"submitTimeAfter": datetime.datetime.fromtimestamp(after, datetime.timezone.utc), "sortBy": "CreationTime",
                            "sortOrder": "Descending", "maxResults": 100}
    for _ in range(FIND_PAGES):
        page = client.list_model_invocation_jobs(**args)
        for job in page.get("invocationJobSummaries") or []:
            if ((job.get("inputDataConfig") or {}).get("s3InputDataConfig") or {}).get("s3Uri") == input_file:
                return job["jobArn"]
        if not page.get("nextToken"):
            return None
        args["nextToken"] = page["nextToken"]
    raise LookupCutShort()


def aws_region() -> str:
    """The region litellm sends Bedrock requests to without an aws_region_name:
    AWS_REGION_NAME, AWS_REGION, the profile's region, else us-west-2."""
    region = os.environ.get("AWS_REGION_NAME") or os.environ.get("AWS_REGION")
    if not region:
        import boto3

        region = boto3.Session().region_name
    return region or "us-west-2"
