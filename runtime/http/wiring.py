"""Build the :class:`HttpState` of a running ``tqrun`` from its real parts.

``runtime.app`` calls :func:`runtime_state` so the HTTP layer reads worker snapshots from Redis
(``runtime.broker.telemetry``), shows the autoscaler controller's live view, and enqueues through the
real ``runtime.client.Client`` (same validation, limits and envelope as the Python API). Web apps
that mount the API (``examples/``) call it too, with their own broker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.broker.redis import RedisBroker
from runtime.config.model import Settings
from runtime.http.state import HttpState, client_enqueuer
from runtime.logging import secrets_from_env


def runtime_state(
    settings: Settings,
    broker: RedisBroker,
    controller: Any | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    extra_secrets: Sequence[str] = (),
) -> HttpState:
    """Settings + broker (+ the autoscaler controller, when one runs) -> a wired ``HttpState``."""
    from runtime.broker.telemetry import telemetry_for
    from runtime.client import Client

    telemetry = telemetry_for(settings)
    client = Client(settings, broker=broker)
    autoscaler = None
    if controller is not None:
        from runtime.autoscaler.controller import snapshot

        def autoscaler() -> dict[str, Any]:
            return snapshot(controller)

    env = os.environ if environ is None else environ
    return HttpState(
        settings=settings,
        broker=broker,
        workers=telemetry.workers,
        autoscaler=autoscaler,
        enqueue=client_enqueuer(client),
        secrets=[*secrets_from_env(env), *extra_secrets],
    )
