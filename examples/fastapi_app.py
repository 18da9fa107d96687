"""A FastAPI app that enqueues tqrun jobs from its request handlers and mounts the monitoring API.

Run it next to ``tqrun pipelines/dev.yaml`` (same pipeline file, so the same Redis and queues)::

    TQ_PIPELINE=pipelines/dev.yaml uvicorn --factory examples.fastapi_app:from_env

- ``POST /add?a=1&b=2`` enqueues the ``add`` task and answers 202 with the job id;
- ``GET /jobs/{id}`` reports its status and, once it succeeded, its result;
- ``/tq/...`` is tqrun's whole HTTP surface (dashboard at ``/tq/``, ``/tq/metrics``, ``/tq/health``,
  the JSON API; state-changing endpoints need the pipeline's ``http.auth_token``).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, HTTPException

from runtime import Client
from runtime.config import load_settings
from runtime.config.model import Settings
from runtime.http.app import create_app
from runtime.http.wiring import runtime_state


def create(settings: Settings) -> FastAPI:
    client = Client(settings)
    app = FastAPI(title="example shop")

    @app.post("/add", status_code=202)
    def add(a: float, b: float) -> dict[str, Any]:
        job = client.enqueue("add", a, b)
        return {"job": job.id, "status": job.status()}

    @app.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        job = client.job(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        status = job.status()
        result = job.result(timeout=0) if status == "succeeded" else None
        return {"job": job_id, "status": status, "result": result}

    app.mount("/tq", create_app(runtime_state(settings, client.broker)))
    return app


def from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: the pipeline file comes from ``TQ_PIPELINE``."""
    return create(load_settings(os.environ.get("TQ_PIPELINE", "pipelines/dev.yaml")))
