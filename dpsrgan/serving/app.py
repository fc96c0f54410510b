"""The Ray Serve application: an HTTP ``Ingress`` in front of ``Model`` replicas.

::

    client ─HTTP─► Serve proxy ─► Ingress ──handle (bounded queue)──► Model replica × N
                                  deadline, 503/504,                  admission, @serve.batch,
                                  /healthz, one-line errors           scheduler, CLI decode/encode

The ingress stamps each request's deadline on arrival, so time spent queued counts against it;
it refuses with one JSON line (never a traceback), maps a full queue to 503 + ``Retry-After``,
and at the deadline answers 504 and cancels the replica's call. A replica admits only what can
finish in time (:mod:`~dpsrgan.serving.worker`), batches same-sized small images with
``@serve.batch``, and stops cancelled work at the next checkpoint (:mod:`~dpsrgan.serving.scheduler`).

``build_app`` is the application builder a Serve config file names
(``import_path: dpsrgan.serving.app:build_app``); ``dpsrgan serve`` calls it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ray import serve
from ray.serve import Application
from ray.serve.config import BackpressureConfig
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import Response

from dpsrgan.errors import DpsrganError
from dpsrgan.serving import http
from dpsrgan.serving.replies import DEADLINE, INTERNAL, NOT_FOUND, UNAVAILABLE, Refusal, Reply, Upscaled, deadline_passed
from dpsrgan.serving.scheduler import Cancelled, Group, Job
from dpsrgan.serving.settings import ServeSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
GRACE_S = 2.0
"""The ingress waits this long past a deadline for the replica's own 504 before giving it."""
RETRY_AFTER_S = 2.0
"""``Retry-After`` when the queue in front of the replicas is full."""
CONCURRENT_BATCHES = 64
"""Batches handed to the scheduler at once. Serve's default of one would hold every small
request behind the batch in progress; the scheduler decides who computes (Serve's
``max_ongoing_requests`` bounds how many requests there are at all)."""


@serve.deployment(name="Model", graceful_shutdown_timeout_s=3, graceful_shutdown_wait_loop_s=0.5)
class ModelDeployment:
    """One model replica: the worker behind Serve's limits, plus alias following."""

    async def __init__(self, settings: ServeSettings) -> None:
        from dpsrgan.serving.replica import start_worker

        self.settings = settings
        self._threads = ThreadPoolExecutor(settings.max_ongoing + 2, thread_name_prefix="dpsrgan-job")
        self.worker = await self._thread(start_worker, settings)
        self._batched.set_max_batch_size(settings.max_batch_size)
        self._batched.set_batch_wait_timeout_s(settings.batch_wait_s)
        self._reload_error: str | None = None
        self._follower = asyncio.get_running_loop().create_task(self._follow_alias())

    async def upscale(self, data: bytes, deadline: float, label: str = "upload") -> Reply:
        """Admit, decode, compute (batched when it fits one tile), encode; a refusal otherwise."""
        admitted = self.worker.admit(data, deadline, label)
        if isinstance(admitted, Refusal):
            return admitted
        job, outcome = admitted, "cancelled"
        try:
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                reply = await self._run(job, data)
            outcome = "completed" if isinstance(reply, Upscaled) else "refused"
            return reply
        except (TimeoutError, Cancelled):
            self.worker.cancel(job)
            return deadline_passed(label, self.settings.timeout_s)
        except asyncio.CancelledError:  # the client left or the ingress gave up: stop the work
            self.worker.cancel(job)
            raise
        finally:
            self.worker.finish(job, outcome)

    async def _run(self, job: Job, data: bytes) -> Reply:
        decoded = await self._thread(self.worker.decode, data, job.label)
        if isinstance(decoded, Refusal):
            return decoded
        if job.steps == 1:
            planes = await self._batched((job, decoded.planes))
            if isinstance(planes, Cancelled):
                raise planes
        else:
            (planes,) = await self._thread(self.worker.compute, job, [decoded.planes])
        png = await self._thread(self.worker.encode, job, planes, decoded)
        return Upscaled(png, self.worker.model.version)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.005, max_concurrent_batches=CONCURRENT_BATCHES)
    async def _batched(self, items: list[tuple[Job, Any]]) -> list[Any]:
        """Same-shaped images run as one batch, others in their own (the scheduler orders them);
        a cancelled batch hands each member its :class:`Cancelled`."""
        groups: dict[tuple, list[int]] = {}
        for index, (_, planes) in enumerate(items):
            groups.setdefault((planes.color.shape, planes.color.dtype.str), []).append(index)
        results: list[Any] = [None] * len(items)

        async def run(indices: list[int]) -> None:
            jobs = [items[i][0] for i in indices]
            runnable = jobs[0] if len(jobs) == 1 else Group(jobs)
            try:
                outs = await self._thread(self.worker.compute, runnable, [items[i][1] for i in indices])
            except Cancelled as cancelled:
                outs = [cancelled] * len(indices)
            for i, out in zip(indices, outs, strict=True):
                results[i] = out

        await asyncio.gather(*(run(indices) for indices in groups.values()))
        return results

    async def stats(self) -> dict:
        return {**self.worker.snapshot(), "reload_error": self._reload_error}

    async def _thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call, *args)

    async def _follow_alias(self) -> None:
        """With ``models:/NAME@ALIAS``: every ``reload_interval_s``, look the alias up and swap in
        the version it points at if it moved. A failed look-up keeps the current model serving."""
        from dpsrgan.serving.model_source import follows_alias, load, pin

        if not follows_alias(self.settings.model) or self.settings.reload_interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                pinned = await self._thread(pin, self.settings.model)
                if pinned.version != self.worker.model.version:
                    model = await self._thread(load, pinned, self.settings.device)
                    await self._thread(self.worker.swap, model)
                    logger.warning("%s moved: now serving %s", self.settings.model, pinned.version)
                self._reload_error = None
            except DpsrganError as error:
                self._reload_error = str(error)
                logger.warning("alias check failed, still serving %s: %s", self.worker.model.version, error)

    def __del__(self) -> None:
        """Replica shutdown: stop every job at its next checkpoint, drop what is queued."""
        self.worker.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


@serve.deployment(name="Ingress", graceful_shutdown_timeout_s=3, graceful_shutdown_wait_loop_s=0.5)
class IngressDeployment:
    """HTTP routes, deadlines and refusals in front of the model replicas."""

    def __init__(self, model: DeploymentHandle, settings: ServeSettings) -> None:
        self.model = model
        self.settings = settings
        self.in_flight = 0
        self.draining = False

    async def __call__(self, request: Request) -> Response:
        routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("POST", "/upscale"): self._upscale,
            ("POST", "/invocations"): self._invocations,
            ("GET", "/healthz"): self._healthz,
            ("GET", "/stats"): self._stats,
        }
        route = routes.get((request.method, request.url.path))
        if route is None:
            known = ", ".join(f"{method} {path}" for method, path in routes)
            return http.error_response(Refusal(404, NOT_FOUND, f"{request.method} {request.url.path}: no such route; try {known}"))
        return await route(request)

    async def drain(self) -> int:
        """Refuse new work from now on (``/healthz`` 503); returns the requests still open."""
        self.draining = True
        return self.in_flight

    async def open_requests(self) -> int:
        return self.in_flight

    async def _upscale(self, request: Request) -> Response:
        limit = self.settings.max_body_bytes
        reply = await self._admitted(request, limit, lambda body, deadline: self._call_model(body, deadline, "upload"))
        return http.png_response(reply) if isinstance(reply, Upscaled) else http.error_response(reply)

    async def _invocations(self, request: Request) -> Response:
        limit = self.settings.max_body_bytes * 4 // 3 + 65536  # base64 in JSON
        reply = await self._admitted(request, limit, self._rows)
        return reply if isinstance(reply, Response) else http.error_response(reply)

    async def _admitted(
        self, request: Request, limit: int, handle_body: Callable[[bytes, float], Awaitable[Any]]
    ) -> Any:
        """Deadline from arrival, draining, the body limit, and the open-request count."""
        deadline = time.time() + self.settings.timeout_s
        if self.draining:
            return Refusal(503, UNAVAILABLE, "server is shutting down; retry on another instance", RETRY_AFTER_S)
        self.in_flight += 1
        try:
            body = await http.read_body(request, limit)
            return body if isinstance(body, Refusal) else await handle_body(body, deadline)
        finally:
            self.in_flight -= 1

    async def _rows(self, body: bytes, deadline: float) -> Response | Refusal:
        images = http.invocation_images(body)
        if isinstance(images, Refusal):
            return images
        replies = await asyncio.gather(*(self._call_model(data, deadline, label) for label, data in images))
        refusal = next((reply for reply in replies if isinstance(reply, Refusal)), None)
        return refusal if refusal is not None else http.predictions_response(list(replies))

    async def _call_model(self, data: bytes, deadline: float, label: str) -> Reply:
        """One model call: queue full → 503, past the deadline (+grace) → 504 and cancelled."""
        response = self.model.upscale.remote(data, deadline, label)
        try:
            return await asyncio.wait_for(response, timeout=max(0.0, deadline - time.time()) + GRACE_S)
        except TimeoutError:
            response.cancel()
            return Refusal(504, DEADLINE, f"{label}: not done within the {self.settings.timeout_s:g} s deadline")
        except BackPressureError:
            return Refusal(503, UNAVAILABLE, f"{label}: queue full ({self.settings.max_queued} waiting); retry later",
                           RETRY_AFTER_S)
        except DeploymentUnavailableError:
            return Refusal(503, UNAVAILABLE, f"{label}: the model is not available yet; retry later", RETRY_AFTER_S)
        except asyncio.CancelledError:
            response.cancel()
            raise
        except Exception:  # noqa: BLE001 - logged with its traceback; the client gets one line
            logger.exception("model call failed for %s", label)
            return Refusal(500, INTERNAL, f"{label}: internal error in the model replica (see the server log)")

    async def _healthz(self, request: Request) -> Response:
        """200 only while new work would be taken: not draining, not at capacity."""
        if self.draining:
            return http.error_response(Refusal(503, UNAVAILABLE, "draining: shutting down"))
        if self.in_flight >= self.settings.ingress_capacity:
            return http.error_response(Refusal(503, UNAVAILABLE, f"at capacity ({self.in_flight} open requests)"))
        return http.json_response({"status": "ok", "in_flight": self.in_flight})

    async def _stats(self, request: Request) -> Response:
        try:
            replica = await asyncio.wait_for(self.model.stats.remote(), timeout=5)
        except (TimeoutError, BackPressureError, DeploymentUnavailableError):
            return http.error_response(Refusal(503, UNAVAILABLE, "stats: the model replica is busy; retry"))
        return http.json_response({"ingress_in_flight": self.in_flight, **replica})


def build_app(args: dict[str, Any]) -> Application:
    """The application for ``args`` (a Serve config file's ``args:``, or ``dpsrgan serve``'s
    flags as :class:`ServeSettings` fields). Unknown keys and bad values are one line."""
    settings = args if isinstance(args, ServeSettings) else ServeSettings.from_args(args)
    model = ModelDeployment.options(**model_options(settings)).bind(settings)
    return IngressDeployment.options(**ingress_options(settings)).bind(model, settings)


def model_options(settings: ServeSettings) -> dict[str, Any]:
    """Serve options of the model deployment (a config file's ``deployments:`` may override
    replicas, autoscaling and resources)."""
    gpu = settings.device == "cuda" or (settings.device == "auto" and _local_gpu())
    return {
        "num_replicas": settings.replicas,
        "max_ongoing_requests": settings.max_ongoing,
        "max_queued_requests": settings.max_queued,
        "ray_actor_options": {"num_cpus": settings.replica_cpus(), "num_gpus": 1 if gpu else 0},
        "health_check_period_s": 5,
    }


def ingress_options(settings: ServeSettings) -> dict[str, Any]:
    """The ingress is cheap (it waits on the model), so its own limits only stop a flood: its
    queue is the proxy's staging while a burst is assigned, and a tight one would answer Serve's
    plain-text 503 to bursts that the model queue would have taken or refused with our line."""
    return {
        "max_ongoing_requests": settings.ingress_capacity + 8,  # + room for /healthz and /stats
        "max_queued_requests": 4 * settings.ingress_capacity + 64,
        "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=RETRY_AFTER_S),
        "ray_actor_options": {"num_cpus": 0},
    }


def _local_gpu() -> bool:
    """Whether the machine building the app sees a GPU (a config file states it instead)."""
    import torch

    return torch.cuda.is_available()

