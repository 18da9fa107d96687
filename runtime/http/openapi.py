"""The OpenAPI 3.1 document of the JSON API (served at ``/openapi.json``).

Built from the endpoint table in ``runtime.http.routes`` plus a response schema per path, so a path
cannot exist without being documented (a test checks both directions, and checks every real response
against its schema). Schemas are strict (``additionalProperties: false``) so a renamed field fails.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from runtime.config.model import Settings
from runtime.http.routes import ENDPOINTS

Schema = dict[str, Any]


def _obj(props: dict[str, Schema], required: list[str] | None = None, extra: bool = False) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _arr(item: Schema) -> Schema:
    return {"type": "array", "items": item}


S: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
N: Schema = {"type": "number"}
B: Schema = {"type": "boolean"}
NN: Schema = {"type": ["number", "null"]}
NI: Schema = {"type": ["integer", "null"]}
NS: Schema = {"type": ["string", "null"]}
QUANT = _obj({"p50": NN, "p95": NN, "p99": NN})
STATUS = {"type": "string", "enum": ["ok", "degraded", "fail"]}

SUMMARY: dict[str, Schema] = {
    "pipeline": S,
    "status": STATUS,
    "uptime_seconds": N,
    "workers": INT,
    "slots": INT,
    "busy": INT,
    "utilization": NN,
    "succeeded": INT,
    "failed": INT,
    "retried": INT,
    "dead": INT,
    "ready": INT,
    "scheduled": INT,
    "running": INT,
    "dead_letters": INT,
    "throughput_per_s": NN,
    "redis_rtt_ms": NN,
    "desired_workers": NN,
}

JOB_ID_SCHEMA: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}

#: what a task argument may be: JSON that msgpack can encode (64-bit integers)
VALUE: Schema = {
    "anyOf": [
        {"type": ["string", "boolean", "null"]},
        {"type": "number", "minimum": -(2**63), "maximum": 2**64 - 1},
        {"type": "array", "items": {"$ref": "#/components/schemas/Value"}},
        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Value"}},
    ]
}

COMPONENTS: dict[str, Schema] = {
    "Value": VALUE,
    "Error": _obj({"error": S, "status": INT}),
    "Check": _obj({"name": S, "status": STATUS, "detail": S}),
    "Health": _obj({"status": {"type": "string", "enum": ["ok", "fail"]}, "pipeline": S}),
    "HealthDetailed": _obj(
        {"status": STATUS, "checks": _arr(_ref("Check")), "started_at": N, "uptime_seconds": N}
    ),
    "Ready": _obj({"ready": B, "checks": _arr(_ref("Check"))}),
    "Uptime": _obj({"started_at": N, "uptime_seconds": N}),
    "Summary": _obj(SUMMARY),
    "Queue": _obj(
        {
            "queue": S,
            "priority": INT,
            "ready": INT,
            "scheduled": INT,
            "running": INT,
            "dead": INT,
            "oldest_ready_age_ms": N,
            "rate_per_s": NN,
            "rate_limit": NN,
            "max_length": NI,
        }
    ),
    "Worker": _obj(
        {
            "worker_id": S,
            "host": S,
            "pid": INT,
            "state": S,
            "slots": INT,
            "busy": INT,
            "rss_bytes": INT,
            "cpu_seconds": N,
            "reserved_total": INT,
            "started_at": N,
            "heartbeat_age_s": N,
            "last_reserve_at": NN,
            "processed": INT,
        }
    ),
    "Performance": _obj(
        {
            "tasks": {
                "type": "object",
                "additionalProperties": _obj(
                    {
                        "succeeded": INT,
                        "failed": INT,
                        "retried": INT,
                        "dead": INT,
                        "success_rate": NN,
                        "run_ms": _obj({"p50": NN, "p95": NN, "p99": NN, "mean": NN}),
                    }
                ),
            },
            "queue_wait_ms": {"type": "object", "additionalProperties": QUANT},
            "throughput_per_s": NN,
            "started_per_s": NN,
        }
    ),
    "System": _obj(
        {
            "host": S,
            "pid": INT,
            "python": S,
            "platform": S,
            "cpu_count": NI,
            "load_avg": {"type": ["array", "null"], "items": N},
            "process_rss_bytes": INT,
            "process_cpu_seconds": N,
            "redis_rtt_ms": NN,
            "redis_error": NS,
        }
    ),
    "Memory": _obj(
        {
            "process_rss_bytes": INT,
            "workers_rss_bytes": INT,
            "per_worker_rss_bytes": {"type": "object", "additionalProperties": INT},
            "max_worker_rss_bytes": INT,
            "worker_limit_mb": N,
        }
    ),
    "Autoscaler": _obj(
        {
            "enabled": B,
            "min_workers": INT,
            "max_workers": INT,
            "interval_s": N,
            "current_workers": INT,
            "snapshot": {"type": ["object", "null"]},
        }
    ),
    "Status": _obj(
        {
            **SUMMARY,
            "queues": _arr(_ref("Queue")),
            "workers": _arr(_ref("Worker")),
            "autoscaler": _ref("Autoscaler"),
        }
    ),
    "Metrics": _obj(
        {
            "system": _ref("System"),
            "performance": _ref("Performance"),
            "autoscaler": _ref("Autoscaler"),
            "queues": _arr(_ref("Queue")),
            "workers": _arr(_ref("Worker")),
            "memory": _ref("Memory"),
            "summary": _ref("Summary"),
        }
    ),
    "Task": _obj(
        {
            "name": S,
            "declared": B,
            "queue": NS,
            "entry": NS,
            "succeeded": INT,
            "failed": INT,
            "retried": INT,
            "dead": INT,
            "mean_run_ms": NN,
        }
    ),
    "Registry": _obj(
        {
            "pipeline": S,
            "queues": _arr(_obj({"name": S, "priority": INT, "max_length": NI, "rate_limit": NN})),
            "tasks": _arr(
                _obj(
                    {
                        "name": S,
                        "entry": S,
                        "queue": S,
                        "timeout_s": N,
                        "executor": S,
                        "retries": _obj(
                            {"max": INT, "backoff": S, "base_s": N, "max_delay_s": N, "jitter": B}
                        ),
                    }
                )
            ),
            "schedules": _arr(_obj({"name": S, "task": S, "cron": S, "timezone": S, "enabled": B})),
        }
    ),
    "Alert": _obj({"name": S, "severity": {"type": "string", "enum": ["warning", "critical"]}, "message": S}),
    "Sla": _obj(
        {
            "status": {"type": "string", "enum": ["met", "violated", "no data"]},
            "window_seconds": NN,
            "targets": _obj(
                {"p95_latency_ms": N, "success_rate": N, "queue_wait_p95_ms": N, "utilization": N}
            ),
            "measured": _obj(
                {"p95_latency_ms": NN, "p95_run_ms": NN, "success_rate": NN, "queue_wait_p95_ms": NN,
                 "utilization": NN}
            ),
            "met": _obj(
                {
                    k: {"type": ["boolean", "null"]}
                    for k in ("p95_latency_ms", "success_rate", "queue_wait_p95_ms")
                }
            ),
        }
    ),
    "Diagnostics": _obj(
        {
            "version": S,
            "python": S,
            "pipeline": S,
            "source": NS,
            "broker": _obj({"url": S, "namespace": S, "lease_s": N, "max_deliveries": INT}),
            "redis": _obj({"rtt_ms": NN, "error": NS, "server_clock_skew_ms": NN}),
            "http": _obj({"host": S, "port": INT, "auth_configured": B, "ready_stall_s": N}),
            "workers": _obj({"configured_processes": INT, "concurrency": INT, "live": INT}),
            "checks": _arr(_ref("Check")),
            "errors": _arr(S),
        }
    ),
    "Job": _obj(
        {
            "id": S,
            "queue": S,
            "state": {
                "type": "string",
                "enum": ["queued", "scheduled", "running", "succeeded", "failed", "dead", "cancelled"],
            },
            "task": S,
            "attempt": INT,
            "deliveries": INT,
            "enqueued_ms": NI,
            "started_ms": NI,
            "finished_ms": NI,
            "error": NS,
            "result_bytes": NI,
            "payload_bytes": NI,
            "history": _arr({"type": "object", "properties": {"t": N, "event": S}}),
        }
    ),
    "EnqueueRequest": _obj(
        {
            "task": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
            "args": {"type": "array", "items": _ref("Value")},
            "kwargs": {"type": "object", "additionalProperties": _ref("Value")},
            "queue": S,
            "delay": {"type": "number", "minimum": 0, "maximum": 31622400},
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 256},
        },
        required=["task"],
    ),
    "EnqueueReply": _obj({"id": S, "task": S}),
    "DeadLetters": _obj({"queue": S, "total": INT, "jobs": _arr(_ref("Job"))}),
    "ReplayRequest": _obj(
        {
            "ids": {"type": "array", "items": JOB_ID_SCHEMA, "maxItems": 10000},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
        },
        required=[],
    ),
    "ReplayReply": _obj({"queue": S, "replayed": INT}),
}

#: path -> (200/201 schema name or media type, extra documented statuses)
RESPONSES: dict[tuple[str, str], tuple[str, list[int]]] = {
    ("GET", "/"): ("text/html", []),
    ("GET", "/health"): ("Health", [503]),
    ("GET", "/health/detailed"): ("HealthDetailed", [503]),
    ("GET", "/ready"): ("Ready", [503]),
    ("GET", "/status"): ("Status", [503]),
    ("GET", "/uptime"): ("Uptime", [503]),
    ("GET", "/metrics"): ("text/plain", [503]),
    ("GET", "/api/metrics"): ("Metrics", [503]),
    ("GET", "/api/metrics/system"): ("System", [503]),
    ("GET", "/api/metrics/performance"): ("Performance", [503]),
    ("GET", "/api/metrics/autoscaler"): ("Autoscaler", [503]),
    ("GET", "/api/metrics/queues"): ("Queue[]", [503]),
    ("GET", "/api/metrics/workers"): ("Worker[]", [503]),
    ("GET", "/api/metrics/memory"): ("Memory", [503]),
    ("GET", "/api/metrics/summary"): ("Summary", [503]),
    ("GET", "/api/tasks"): ("Task[]", [503]),
    ("GET", "/api/registry"): ("Registry", []),
    ("GET", "/api/alerts"): ("Alert[]", [503]),
    ("GET", "/api/sla"): ("Sla", [503]),
    ("GET", "/api/diagnostics"): ("Diagnostics", [503]),
    ("GET", "/api/jobs/{id}"): ("Job", [404, 503]),
    ("POST", "/api/jobs"): ("EnqueueReply", [400, 401, 403, 413, 422, 429, 501, 503]),
    ("GET", "/api/dlq/{queue}"): ("DeadLetters", [404, 422, 503]),
    ("POST", "/api/dlq/{queue}/replay"): ("ReplayReply", [400, 401, 403, 404, 413, 422, 503]),
    ("GET", "/openapi.json"): ("application/json", []),
}

_REQUESTS = {
    ("POST", "/api/jobs"): ("EnqueueRequest", True),
    ("POST", "/api/dlq/{queue}/replay"): ("ReplayRequest", False),
}


def _content(kind: str) -> dict[str, Any]:
    if kind == "text/html" or kind == "text/plain":
        return {kind: {"schema": {"type": "string"}}}
    if kind == "application/json":
        return {kind: {"schema": {"type": "object"}}}
    schema = _arr(_ref(kind[:-2])) if kind.endswith("[]") else _ref(kind)
    return {"application/json": {"schema": schema}}


def _operation(
    method: str, path: str, summary: str, mutating: bool, queues: list[str] | None
) -> dict[str, Any]:
    kind, extra = RESPONSES[(method, path)]
    ok = "201" if method == "POST" and path == "/api/jobs" else "200"
    responses: dict[str, Any] = {ok: {"description": "OK", "content": _content(kind)}}
    for status in extra:
        responses[str(status)] = {"description": "Error", "content": _content("Error")}
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{method.lower()}{path}".replace("/", "_"),
        "responses": responses,
    }
    params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
    if params:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": _param_schema(p, queues)} for p in params
        ]
    if (method, path) in _REQUESTS:
        name, required = _REQUESTS[(method, path)]
        op["requestBody"] = {"required": required, "content": {"application/json": {"schema": _ref(name)}}}
    if mutating:
        op["security"] = [{"bearer": []}]
    return op


def _param_schema(name: str, queues: list[str] | None) -> Schema:
    if name == "queue" and queues:
        return {"type": "string", "enum": queues}
    if name == "id":
        return JOB_ID_SCHEMA
    return {"type": "string"}


def document(settings: Settings | None = None) -> dict[str, Any]:
    """The document; given the pipeline's settings, task and queue names are enumerated in it."""
    queues = [q.name for q in settings.queues_by_priority()] if settings else None
    components = copy.deepcopy(COMPONENTS)
    if settings is not None:
        props = components["EnqueueRequest"]["properties"]
        if settings.tasks:
            props["task"] = {"type": "string", "enum": [t.name for t in settings.tasks]}
        props["queue"] = {"type": "string", "enum": queues}
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(
            ep.method, ep.path, ep.summary, ep.mutating, queues
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tqrun",
            "version": "1",
            "description": "Monitoring and operations API of a tqrun deployment. Endpoints that change "
            "state need `Authorization: Bearer <http.auth_token>`; without a configured "
            "token they answer 403.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def request_validator(settings: Settings | None, name: str) -> jsonschema.Draft202012Validator:
    """A validator of request body ``name`` exactly as the document describes it for these settings."""
    doc = document(settings)
    schema = {**doc["components"]["schemas"][name], "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)
