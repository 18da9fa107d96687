"""Every HTTP endpoint, once, independent of the web framework.

Handlers take the :class:`HttpState` and a framework-neutral :class:`Request` and return a
:class:`Reply`; ``runtime.http.app`` (Starlette/FastAPI) and ``runtime.http.wsgi`` (Flask) only
translate. So the two integrations cannot drift, and the OpenAPI document is checked against this table.

Security (reliability.md S4): endpoints with ``mutating=True`` require ``Authorization: Bearer <token>``
compared in constant time; without a configured ``http.auth_token`` they answer 403 (disabled, never
open). The token is checked before the body is parsed, so an unauthenticated caller learns nothing.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import best_match

from runtime import health
from runtime.errors import InvalidName, QueueFull, SerializationError, TaskQueueError, UnknownTask
from runtime.http import catalog, views
from runtime.http.state import EnqueueRequest, HttpState
from runtime.metrics import CONTENT_TYPE as PROM_TYPE
from runtime.metrics import Scrape, render
from runtime.queues import validate_name

JSON = "application/json"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    root_path: str = ""  # where the app is mounted, for links in HTML


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[HttpState, Request], Reply]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # OpenAPI style: /api/jobs/{id}
    handler: Handler
    summary: str
    mutating: bool = False


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def json_reply(payload: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    try:
        text = json.dumps(payload, default=str, allow_nan=False, separators=(",", ":"))
    except ValueError:  # NaN/inf from a measurement (e.g. a ratio over an empty window): JSON has none
        text = json.dumps(_finite(payload), default=str, allow_nan=False, separators=(",", ":"))
    return Reply(status, text.encode(), JSON, headers)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error_reply(state: HttpState, err: HttpError) -> Reply:
    payload = {"error": state.masker.mask(err.message), "status": err.status}
    return json_reply(payload, err.status, err.headers)


def authorize(state: HttpState, req: Request) -> None:
    token = state.settings.http.auth_token
    if not token:
        raise HttpError(403, "state-changing endpoints are disabled: set http.auth_token to enable them")
    header = req.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        challenge = (("WWW-Authenticate", 'Bearer realm="tqrun"'),)
        raise HttpError(401, "missing or invalid bearer token", challenge)


def dispatch(state: HttpState, endpoint: Endpoint, req: Request) -> Reply:
    """Run one endpoint with auth and error mapping; never lets an exception escape as a 500."""
    try:
        if endpoint.mutating:
            authorize(state, req)
        return endpoint.handler(state, req)
    except HttpError as err:
        return error_reply(state, err)
    except QueueFull as exc:
        return error_reply(state, HttpError(429, f"queue full: {exc}", (("Retry-After", "1"),)))
    except (UnknownTask, InvalidName, SerializationError) as exc:
        return error_reply(state, HttpError(422, str(exc)))
    except (TaskQueueError, OSError) as exc:
        return error_reply(state, HttpError(503, f"broker unavailable: {type(exc).__name__}: {exc}"))


# --- body parsing ----------------------------------------------------------------------------


def _json_body(req: Request, *, optional: bool = False) -> dict[str, Any]:
    if len(req.body) > MAX_BODY:
        raise HttpError(413, "request body too large")
    if not req.body.strip():
        if optional:
            return {}
        raise HttpError(400, "expected a JSON object body")
    try:
        data = json.loads(req.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HttpError(422, "expected a JSON object body")
    return data


def _check_body(state: HttpState, schema: str, data: dict[str, Any]) -> None:
    """Validate against the same schema the OpenAPI document publishes, so they cannot disagree."""
    validator = state.validators.get(schema)
    if validator is None:
        from runtime.http.openapi import request_validator

        validator = state.validators[schema] = request_validator(state.settings, schema)
    error = best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "body"
        raise HttpError(422, f"{where}: {error.message[:200]}")


def _queue_param(state: HttpState, req: Request) -> str:
    name = req.path_params.get("queue", "")
    if name not in state.queue_names:
        raise HttpError(404, f"no queue named {name!r} in this pipeline")
    return name


# --- handlers --------------------------------------------------------------------------------


def _health(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state, with_queues=False)
    check = health.redis_check(snap.rtt, snap.error)
    status = "fail" if not check.ok else "ok"
    return json_reply({"status": status, "pipeline": state.settings.name}, 200 if check.ok else 503)


def _health_detailed(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state)
    found = views.checks(snap)
    status = health.overall(found)
    return json_reply({"status": status, "checks": [c.as_dict() for c in found], **views.uptime(snap)},
                      503 if status == "fail" else 200)


def _ready(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state)
    found = [health.redis_check(snap.rtt, snap.error)]
    if snap.rtt is not None:
        found.append(health.progress_check(snap.queues, snap.workers, snap.now,
                                           state.settings.http.ready_stall, state.started_at))
    ok = all(c.ok for c in found)
    return json_reply({"ready": ok, "checks": [c.as_dict() for c in found]}, 200 if ok else 503)


def _status(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state)
    return json_reply({**views.summary(snap), "queues": views.queues(snap), "workers": views.workers(snap),
                       "autoscaler": views.autoscaler(snap)})


def _uptime(state: HttpState, req: Request) -> Reply:
    return json_reply(views.uptime(views.gather(state, with_queues=False)))


def _prometheus(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state)
    scrape = Scrape(snap.workers, snap.queues, snap.now, snap.autoscaler, snap.rtt, snap.retired)
    return Reply(200, render(scrape), PROM_TYPE)


SECTIONS: dict[str, Callable[[views.Snapshot], Any]] = {
    "system": views.system, "performance": views.performance, "autoscaler": views.autoscaler,
    "queues": views.queues, "workers": views.workers, "memory": views.memory, "summary": views.summary,
}


def _metrics_all(state: HttpState, req: Request) -> Reply:
    snap = views.gather(state)
    return json_reply({name: build(snap) for name, build in SECTIONS.items()})


def _section(name: str) -> Handler:
    def handler(state: HttpState, req: Request) -> Reply:
        return json_reply(SECTIONS[name](views.gather(state)))

    return handler


def _tasks(state: HttpState, req: Request) -> Reply:
    return json_reply(catalog.tasks(views.gather(state, with_queues=False)))


def _registry(state: HttpState, req: Request) -> Reply:
    return json_reply(catalog.registry(state))


def _alerts(state: HttpState, req: Request) -> Reply:
    return json_reply(views.alerts(views.gather(state)))


def _sla(state: HttpState, req: Request) -> Reply:
    return json_reply(views.sla(views.gather(state)))


def _diagnostics(state: HttpState, req: Request) -> Reply:
    return json_reply(catalog.diagnostics(views.gather(state)))


def _job(state: HttpState, req: Request) -> Reply:
    job_id = req.path_params.get("id", "")
    if not catalog.JOB_ID.match(job_id):
        raise HttpError(404, "no such job")
    info = state.broker.job(job_id, state.queue_names)
    if info is None:
        raise HttpError(404, "no such job")
    return json_reply(catalog.job(info, state.masker))


def _enqueue(state: HttpState, req: Request) -> Reply:
    if state.enqueue is None:
        raise HttpError(501, "enqueue is not available on this server")
    data = _json_body(req)
    _check_body(state, "EnqueueRequest", data)  # types, names, ranges: as the OpenAPI document says
    task = str(data["task"])
    validate_name(task, "task")
    declared = {t.name for t in state.settings.tasks}
    if declared and task not in declared:
        raise HttpError(422, f"unknown task {task!r}")
    queue = data.get("queue")
    if queue is not None and queue not in state.queue_names:
        raise HttpError(422, f"unknown queue {queue!r}")
    delay = data.get("delay")
    request = EnqueueRequest(task=task, args=list(data.get("args", [])), kwargs=dict(data.get("kwargs", {})),
                             queue=queue, delay=float(delay) if delay is not None else None,
                             idempotency_key=data.get("idempotency_key"))
    try:
        job_id = state.enqueue(request)
    except (TypeError, ValueError, OverflowError) as exc:  # arguments the codec cannot encode
        raise HttpError(422, f"cannot enqueue: {exc}") from None
    return json_reply({"id": job_id, "task": task}, 201)


def _dlq_list(state: HttpState, req: Request) -> Reply:
    queue = _queue_param(state, req)
    try:
        start = max(0, int(req.query.get("start", "0")))
        count = min(500, max(1, int(req.query.get("count", "50"))))
    except ValueError:
        raise HttpError(422, "start and count must be integers") from None
    jobs = state.broker.dead_letters(queue, start, count)
    return json_reply({"queue": queue, "total": state.broker.stats(queue).dead,
                       "jobs": [catalog.job(j, state.masker) for j in jobs]})


def _dlq_replay(state: HttpState, req: Request) -> Reply:
    queue = _queue_param(state, req)
    data = _json_body(req, optional=True)
    _check_body(state, "ReplayRequest", data)
    ids = data.get("ids")
    limit = int(data.get("limit", 1000))
    replayed = state.broker.replay_dead(queue, ids, limit)
    return json_reply({"queue": queue, "replayed": replayed})


def _openapi(state: HttpState, req: Request) -> Reply:
    from runtime.http.openapi import document

    return json_reply(document(state.settings))


def _dashboard(state: HttpState, req: Request) -> Reply:
    from runtime.http.dashboard import render_page

    return Reply(200, render_page(state, req).encode(), "text/html; charset=utf-8",
                 (("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'"),))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/", _dashboard, "Dashboard (HTML)"),
    Endpoint("GET", "/health", _health, "Liveness: Redis answers"),
    Endpoint("GET", "/health/detailed", _health_detailed, "Every health check with details"),
    Endpoint("GET", "/ready", _ready, "Readiness: Redis answers and ready work is being reserved"),
    Endpoint("GET", "/status", _status, "Summary, queues, workers and autoscaler"),
    Endpoint("GET", "/uptime", _uptime, "Uptime of this server"),
    Endpoint("GET", "/metrics", _prometheus, "Prometheus text exposition"),
    Endpoint("GET", "/api/metrics", _metrics_all, "Every metrics section"),
    *(Endpoint("GET", f"/api/metrics/{name}", _section(name), f"Metrics: {name}") for name in SECTIONS),
    Endpoint("GET", "/api/tasks", _tasks, "Tasks with counters"),
    Endpoint("GET", "/api/registry", _registry, "Declared queues, tasks and schedules"),
    Endpoint("GET", "/api/alerts", _alerts, "Active alerts"),
    Endpoint("GET", "/api/sla", _sla, "SLA targets and measurements"),
    Endpoint("GET", "/api/diagnostics", _diagnostics, "Diagnostics (masked)"),
    Endpoint("GET", "/api/jobs/{id}", _job, "One job and its timeline"),
    Endpoint("POST", "/api/jobs", _enqueue, "Enqueue a job", mutating=True),
    Endpoint("GET", "/api/dlq/{queue}", _dlq_list, "Dead-lettered jobs of a queue"),
    Endpoint("POST", "/api/dlq/{queue}/replay", _dlq_replay, "Replay dead-lettered jobs", mutating=True),
    Endpoint("GET", "/openapi.json", _openapi, "This API's OpenAPI document"),
)
