"""A Flask app that enqueues tqrun jobs from its request handlers and registers the monitoring API.

Run it next to ``tqrun pipelines/dev.yaml`` (same pipeline file, so the same Redis and queues)::

    TQ_PIPELINE=pipelines/dev.yaml flask --app 'examples.flask_app:from_env()' run

- ``POST /add`` with JSON ``{"a": 1, "b": 2}`` enqueues the ``add`` task (202 + job id);
- ``GET /jobs/<id>`` reports its status and result;
- ``/tq/...`` is tqrun's whole HTTP surface as a blueprint (dashboard at ``/tq/``, ``/tq/metrics``...).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, request

from runtime import Client
from runtime.config import load_settings
from runtime.config.model import Settings
from runtime.http.wiring import runtime_state
from runtime.http.wsgi import create_blueprint


def create(settings: Settings) -> Flask:
    client = Client(settings)
    app = Flask(__name__)

    @app.post("/add")
    def add() -> tuple[dict[str, Any], int]:
        body = request.get_json(silent=True) or {}
        try:
            a, b = float(body["a"]), float(body["b"])
        except (KeyError, TypeError, ValueError):
            abort(422, "give numbers a and b")
        job = client.enqueue("add", a, b)
        return {"job": job.id, "status": job.status()}, 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> dict[str, Any]:
        job = client.job(job_id)
        if job is None:
            abort(404, "no such job")
        status = job.status()
        result = job.result(timeout=0) if status == "succeeded" else None
        return {"job": job_id, "status": status, "result": result}

    app.register_blueprint(create_blueprint(runtime_state(settings, client.broker)), url_prefix="/tq")
    return app


def from_env() -> Flask:
    """Factory for ``flask --app``: the pipeline file comes from ``TQ_PIPELINE``."""
    return create(load_settings(os.environ.get("TQ_PIPELINE", "pipelines/dev.yaml")))
