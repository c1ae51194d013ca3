"""`run --executor ray[=ADDRESS]`: the calls of each dependency level are sent
by Ray actors, each running this package's async ``Caller``.

Why actors running our Caller and not Ray Data's LLM processors: a call here
is more than an HTTP request. The Caller brings the retries with backoff, a
provider's Retry-After, the empty and cut-answer rules, the request meter
(attempts, latency), the Router deployments and the simulator, and the
runner around it brings leases, strict parsers with re-asks, budgets and
progress. Ray Data's processors would replace the first with their own and
write results from the workers; here the workers only send, and the driver
(the process that runs ``persona-exp run``) stays the one writer of the call
cache, so a killed run loses nothing it finished, two runs never send one call
twice, and the counts are those of a local run.

How: the Runner is unchanged but for its callers. Each role's caller is a
``RemoteCaller`` that queues the request; queued requests go in batches to the
least loaded actor (one Ray task per batch instead of per call), and the
actor streams the answers back as they finish (grouped every few
milliseconds), to the runner's waiting workers, which cache, parse and count
them as they do locally. Every actor has
the role's settings with its concurrency and rate limits divided by the number
of actors (each deployment's rpm and tpm too), so the cluster as a whole keeps
the role's limits (a Retry-After
pauses the actor that got it). API keys are not sent to the cluster: actors read
them from their own environment (a local cluster started by the run inherits
the driver's; the nodes of a remote one must have them set).
"""

from __future__ import annotations

import asyncio
import math
import resource
import socket
from typing import Any, Mapping

from persona_exp.errors import InvalidArgumentError
from persona_exp.execute.llm import Answer, Caller, CallFailed
from persona_exp.spec.models import ModelConfig

INSTALL = "pip install 'persona-exp[ray]'"
BATCH = 256  # most requests per Ray task: Ray's per-task cost (a few ms of CPU) is then small beside the calls' own
MIN_BATCH = 8  # fewest: a short level is still split among the actors
STREAM_EVERY = 0.1  # seconds: an actor sends what finished at most this often (one Ray object per group, not per call)


def parse_executor(value: str | None) -> tuple[str, str | None]:
    """``local``, ``ray`` or ``ray=ADDRESS`` as (kind, address)."""
    text = (value or "local").strip()
    kind, _, address = text.partition("=")
    if kind not in ("local", "ray") or (kind == "local" and address) or (_ and not address):
        raise InvalidArgumentError(f"--executor {text}: give local, ray (a local Ray cluster) or ray=ADDRESS (an existing one, e.g. ray=auto "
                                   "or ray=ray://head:10001).")
    return kind, address or None


def require_ray() -> Any:
    """The ray module, or an error saying how to install it (exit 2)."""
    try:
        import ray
    except ImportError:
        raise InvalidArgumentError(f"--executor ray needs Ray, which is not installed here; install the extra with {INSTALL} "
                                   "(or run without --executor to use the local executor).") from None
    return ray


def _split(obj: Any, fields: tuple[str, ...], actors: int) -> dict[str, int]:
    return {k: max(1, math.ceil(getattr(obj, k) / actors)) for k in fields if getattr(obj, k) is not None}


def _share(cfg: ModelConfig, actors: int) -> ModelConfig:
    """The role's settings for one of ``actors`` actors: its share of the
    concurrency and rate limits, the role's and each deployment's (every
    actor runs its own Router, which would otherwise allow each deployment
    its whole rpm/tpm per actor)."""
    split: dict[str, Any] = _split(cfg, ("concurrency", "rpm", "tpm"), actors)
    if cfg.deployments:
        split["deployments"] = [d.model_copy(update=_split(d, ("rpm", "tpm"), actors)) for d in cfg.deployments]
    return cfg.model_copy(update=split)


ADDRESS_TIMEOUT = 5.0  # seconds to wait for a TCP connection to an explicit cluster address


def _check_address(address: str | None, timeout: float = ADDRESS_TIMEOUT) -> None:
    """An explicit HOST:PORT (or ray://HOST:PORT) must accept a TCP
    connection: ray.init waits far longer than that (minutes) at an address
    nothing listens on. ``auto`` and a local cluster are Ray's to find."""
    if not address or address == "auto":
        return
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # not HOST:PORT: left to Ray, which explains its own forms
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (getattr(exc, "strerror", None) or str(exc))
        raise InvalidArgumentError(f"--executor ray={address}: nothing answers at {host}:{port} ({why} after {timeout:g} s); start the cluster "
                                   "there (ray start --head), correct the address, or use --executor ray for a local cluster.") from None


class CallWorker:
    """The body of a Ray actor: one Caller per role, answering batches of requests concurrently."""

    def __init__(self, models: Mapping[str, ModelConfig], backoff_base: float):
        self.models, self.backoff_base = dict(models), backoff_base
        self.callers: dict[str, Caller] = {}

    def cpu_seconds(self) -> float:
        """CPU time this actor's process has used (user + system), to weigh what a call costs on the cluster."""
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime

    async def run(self, batch: list[tuple]) -> Any:
        """Answers the batch's requests concurrently, yielding each group that
        finished within ``STREAM_EVERY`` seconds as (index, outcome) pairs: a
        slow call (retrying, waiting out a Retry-After) holds back none of the
        others, which the driver caches as they arrive."""
        tasks = {asyncio.ensure_future(self._one(*item)): i for i, item in enumerate(batch)}
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, timeout=STREAM_EVERY)
            if done:
                yield [(tasks[t], t.result()) for t in done]

    async def _one(self, role: str, messages: list, replicate: int, slots: dict | None, whole: bool, response_format: dict | None) -> tuple:
        caller = self.callers.get(role)
        if caller is None:  # made here, in the actor's event loop, where its semaphore and locks live
            caller = self.callers[role] = Caller(self.models[role], backoff_base=self.backoff_base)
        try:
            return ("ok", await caller(messages, replicate, slots=slots, whole=whole, response_format=response_format))
        except CallFailed as exc:
            return ("failed", str(exc), exc.reason, exc.usage, exc.cost, exc.text, exc.attempts, exc.latency_ms)


class _Dispatch:
    """Gathers the runner's requests into batches for the actors, and hands each answer back."""

    def __init__(self, actors: list[Any], batch: int):
        self.actors, self.batch = actors, batch
        self.load = [0] * len(actors)  # requests each actor holds
        self.pending: list[tuple[tuple, asyncio.Future]] = []
        self.scheduled = False
        self.tasks: set[asyncio.Task] = set()

    def submit(self, item: tuple) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending.append((item, fut))
        if len(self.pending) >= self.batch:
            self._flush()
        elif not self.scheduled:  # after the runner's other workers have queued theirs in this turn of the loop
            self.scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self.scheduled = False
        while self.pending:
            chunk, self.pending = self.pending[: self.batch], self.pending[self.batch:]
            i = min(range(len(self.actors)), key=self.load.__getitem__)
            self.load[i] += len(chunk)
            stream = self.actors[i].run.options(num_returns="streaming").remote([item for item, _ in chunk])
            task = asyncio.ensure_future(self._collect(i, stream, chunk))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _collect(self, i: int, stream: Any, chunk: list[tuple[tuple, asyncio.Future]]) -> None:
        try:
            async for ref in stream:
                for j, out in await ref:
                    chunk[j][1].set_result(out)
                    self.load[i] -= 1
        except Exception as exc:  # noqa: BLE001 - a dead actor or node: the calls left have no answer, a rerun sends them
            why = f"the Ray worker sending it failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"[:500]
            for _, fut in chunk:
                if not fut.done():
                    fut.set_result(("failed", why, "transport", None, 0.0, None, 0, None))
                    self.load[i] -= 1


class RemoteCaller:
    """Stands for a role's Caller in the driver: same call, answered by an
    actor. Everything else (its config, the request fields the batch path
    writes) is a local Caller's, which never sends."""

    def __init__(self, role: str, config: ModelConfig, dispatch: _Dispatch):
        self.role, self.config, self.dispatch = role, config, dispatch
        self._local: Caller | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._local is None:
            self._local = Caller(self.config)
        return getattr(self._local, name)

    async def __call__(self, messages: list[dict[str, str]], replicate: int = 0, *, slots: dict[str, str] | None = None, whole: bool = False,
                       response_format: dict[str, Any] | None = None) -> Answer:
        out = await self.dispatch.submit((self.role, messages, replicate, slots, whole, response_format))
        if out[0] == "ok":
            return out[1]
        exc = CallFailed(out[1], out[2], out[3], out[4], out[5])
        exc.attempts, exc.latency_ms = out[6], out[7]
        raise exc


class RayExecutor:
    """What the Runner asks of an executor: ``callers`` for the roles (the
    actors are started on the first run and reused by later ones),
    ``workers`` (how many calls the runner keeps in flight) and ``close``."""

    def __init__(self, address: str | None = None, *, actors: int | None = None, batch: int = BATCH, num_cpus: int | None = None):
        self.ray = require_ray()
        self.address, self.n_actors, self.batch, self.num_cpus = address, actors, batch, num_cpus
        self.actors: list[Any] = []
        self.models: dict[str, ModelConfig] = {}
        self.dispatch: _Dispatch | None = None  # the current run's
        self.started = False  # this executor connected to (or started) Ray, so it disconnects at close

    @property
    def label(self) -> str:
        """How the run manifest names this executor: ray (a local cluster) or ray=ADDRESS."""
        return "ray" if self.address is None else f"ray={self.address}"

    def connect(self) -> None:
        """Connects to (or starts) the cluster; a run calls it before building
        its population and plan, so a bad address fails at once."""
        ray = self.ray
        _check_address(self.address)
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = f"at {self.address}" if self.address else "on this machine"
                raise InvalidArgumentError(f"--executor ray: could not reach or start a Ray cluster {where} ({exc}); "
                                           "check the address (e.g. ray=auto for the cluster `ray start` began on this node).") from None
            self.started = True

    def callers(self, models: Mapping[str, ModelConfig], backoff_base: float) -> dict[str, RemoteCaller]:
        if self.actors and models != self.models:  # another set of roles: actors with its settings
            self.close()
        if not self.actors:
            self.connect()
            self.models = dict(models)
            n = self.n_actors or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
            actor = self.ray.remote(num_cpus=1)(CallWorker)
            self.actors = [actor.remote({role: _share(cfg, n) for role, cfg in models.items()}, backoff_base) for _ in range(n)]
        self.dispatch = dispatch = _Dispatch(self.actors, self.batch)
        return {role: RemoteCaller(role, cfg, dispatch) for role, cfg in models.items()}

    def workers(self, local: int, pending: int = 0) -> int:
        """Calls in flight for a level of ``pending`` calls: every actor holds
        two batches of at most ``batch`` requests; a level too short to fill
        them is cut into two smaller batches per actor, so that every actor
        still gets its share. (The simulator is local and synchronous, so the
        local runner keeps one call in flight.)"""
        n = max(1, len(self.actors))
        size = max(MIN_BATCH, min(self.batch, math.ceil(pending / (2 * n)))) if pending else self.batch
        if self.dispatch is not None:
            self.dispatch.batch = size
        return max(local, 2 * size * n)

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone with its node
                pass
        self.actors = []
        if self.started:
            self.ray.shutdown()
            self.started = False
