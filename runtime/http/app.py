"""The ASGI face: a Starlette app serving every endpoint of ``runtime.http.routes``.

Mount it in FastAPI or Starlette with ``app.mount("/tq", create_app(state))``, or add
``routes(state)`` to an existing Starlette router. Handlers do blocking broker calls, so each runs in
Starlette's thread pool and never blocks the event loop.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from runtime.http.routes import ENDPOINTS, MAX_BODY, Endpoint, HttpError, Request, dispatch, error_reply
from runtime.http.state import HttpState

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer"}


class _EndpointApp:
    """One endpoint as an ASGI callable (a class, so Starlette passes the raw scope through)."""

    def __init__(self, state: HttpState, endpoint: Endpoint) -> None:
        self.state = state
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = StarletteRequest(scope, receive)
        body = b""
        if self.endpoint.method == "POST":
            body = await _read_body(request)
        req = Request(
            method=request.method,
            path_params={k: str(v) for k, v in request.path_params.items()},
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            root_path=str(scope.get("root_path", "")),
        )
        if len(body) > MAX_BODY:
            reply = error_reply(self.state, HttpError(413, "request body too large"))
        else:
            reply = await run_in_threadpool(dispatch, self.state, self.endpoint, req)
        headers = {**SECURITY_HEADERS, **dict(reply.headers)}
        response = Response(reply.body, reply.status, headers=headers, media_type=reply.content_type)
        await response(scope, receive, send)


async def _read_body(request: StarletteRequest) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return b"x" * (MAX_BODY + 1)  # marker: reported as 413 without buffering the rest
        chunks.append(chunk)
    return b"".join(chunks)


def routes(state: HttpState) -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Route(ep.path, _EndpointApp(state, ep), methods=[ep.method]) for ep in ENDPOINTS
    ]
    out.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"))
    return out


def create_app(state: HttpState) -> Starlette:
    """The whole HTTP surface as one ASGI app (``tqrun`` serves it; users mount it)."""
    app = Starlette(routes=routes(state))
    app.state.tqrun = state
    return app
