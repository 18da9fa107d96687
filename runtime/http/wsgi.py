"""The Flask face: a blueprint serving every endpoint of ``runtime.http.routes``.

``app.register_blueprint(create_blueprint(state), url_prefix="/tq")`` gives a Flask app the same
monitoring API, dashboard and admin endpoints as ``tqrun`` serves (same handlers, same auth).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, request

from runtime.http.routes import ENDPOINTS, MAX_BODY, Endpoint, HttpError, Request, dispatch, error_reply
from runtime.http.state import HttpState

STATIC_DIR = Path(__file__).parent / "static"
_PARAM = re.compile(r"\{(\w+)\}")


def _view(state: HttpState, endpoint: Endpoint) -> Callable[..., Response]:
    local = _PARAM.sub(r"<\1>", endpoint.path)

    def view(**params: str) -> Response:
        length = request.content_length or 0
        if length > MAX_BODY:
            reply = error_reply(state, HttpError(413, "request body too large"))
        else:
            req = Request(
                method=request.method,
                path_params={k: str(v) for k, v in params.items()},
                query={k: v for k, v in request.args.items()},
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.get_data(cache=False) if endpoint.method == "POST" else b"",
                root_path=request.script_root + _prefix(str(request.url_rule or ""), local),
            )
            reply = dispatch(state, endpoint, req)
        response = Response(reply.body, reply.status, content_type=reply.content_type)
        for key, value in reply.headers:
            response.headers[key] = value
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    view.__name__ = f"{endpoint.method.lower()}_{endpoint.path}".replace(".", "_")
    return view


def _prefix(rule: str, local: str) -> str:
    """The blueprint's URL prefix: the matched rule minus the endpoint's own path."""
    return rule[: len(rule) - len(local)] if rule.endswith(local) else ""


def create_blueprint(state: HttpState, name: str = "tqrun") -> Blueprint:
    bp = Blueprint(name, __name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    for ep in ENDPOINTS:
        bp.add_url_rule(_PARAM.sub(r"<\1>", ep.path), endpoint=f"{ep.method}:{ep.path}".replace(".", "_"),
                        view_func=_view(state, ep), methods=[ep.method])
    return bp
