"""The dashboard at ``/``: one server-rendered Jinja2 page, no build step.

Everything is in the HTML (tables and SVG charts are rendered here), so the page is complete with
JavaScript off. ``static/dashboard.js`` only refreshes the page body every few seconds and performs
the dead-letter replay (which needs the bearer token, kept in ``sessionStorage``, never in a cookie,
so there is no CSRF surface). The numbers come from the same ``views`` functions as the JSON API.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from runtime.errors import TaskQueueError
from runtime.http import catalog, views
from runtime.http.history import Point
from runtime.http.routes import Request
from runtime.http.state import HttpState

TEMPLATES = Path(__file__).parent / "templates"
DLQ_ROWS = 20


@functools.lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["clock"] = _clock
    env.filters["num"] = _num
    env.filters["bytes"] = _bytes
    env.filters["summary"] = _summary
    return env


def _clock(epoch: float | int | None, ms: bool = False) -> str:
    if not epoch:
        return "–"
    seconds = float(epoch) / (1000 if ms else 1)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%H:%M:%S")


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _summary(error: str | None) -> str:
    """The last line of an error text (the exception itself, not the traceback above it)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _bytes(value: int | None) -> str:
    if not value:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def chart(points: Sequence[tuple[float, float | None]], label: str, unit: str,
          width: int = 360, height: int = 90) -> Markup:
    """An SVG line chart (server-rendered so it needs no script)."""
    known = [(t, v) for t, v in points if v is not None]
    title = f"{label} ({unit})"
    if len(known) < 2:
        return Markup(
            '<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-label="{t}">'
            '<text x="8" y="{y}" fill="#888">{t}: collecting data…</text></svg>'
        ).format(w=width, h=height, t=title, y=height // 2)
    t0, t1 = known[0][0], known[-1][0]
    top = max(v for _, v in known) or 1.0
    pad = 14
    coords = " ".join(
        f"{(t - t0) / ((t1 - t0) or 1) * (width - 2 * pad) + pad:.1f},"
        f"{height - pad - v / top * (height - 2 * pad):.1f}" for t, v in known
    )
    return Markup(
        '<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-label="{t}">'
        '<polyline fill="none" stroke="#2a7ae2" stroke-width="2" points="{c}"/>'
        '<text x="4" y="11" fill="#555" font-size="11">{t}: max {m}, now {n}</text></svg>'
    ).format(w=width, h=height, t=title, c=coords, m=_num(top), n=_num(known[-1][1]))


def _charts(points: list[Point]) -> list[Markup]:
    return [
        chart([(p.at, p.throughput) for p in points], "Throughput", "jobs/s"),
        chart([(p.at, p.queue_wait_p95_ms) for p in points], "Queue wait p95", "ms"),
        chart([(p.at, float(p.workers)) for p in points], "Workers", "processes"),
    ]


def _dead_letters(state: HttpState, snap: views.Snapshot) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for q in snap.queues:
        if q.dead:
            jobs = state.broker.dead_letters(q.queue, 0, DLQ_ROWS)
            out[q.queue] = [catalog.job(j, state.masker) for j in jobs]
    return out


def _decisions(snapshot: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not snapshot:
        return []
    rows = snapshot.get("decisions") or snapshot.get("history") or []
    return [r for r in rows if isinstance(r, dict)][:20]


def _lookup(state: HttpState, job_id: str) -> tuple[dict[str, Any] | None, str | None]:
    if not job_id:
        return None, None
    if not catalog.JOB_ID.match(job_id):
        return None, "not a valid job id"
    info = state.broker.job(job_id, state.queue_names)
    if info is None:
        return None, f"no job {job_id}"
    return catalog.job(info, state.masker), None


def render_page(state: HttpState, req: Request) -> str:
    snap = views.gather(state)
    base = req.root_path.rstrip("/")
    context: dict[str, Any] = {"base": base, "pipeline": state.settings.name, "error": snap.error,
                               "token_configured": bool(state.settings.http.auth_token)}
    try:
        autoscaler = views.autoscaler(snap)
        job, job_error = _lookup(state, req.query.get("job", "").strip())
        context.update(
            summary=views.summary(snap), queues=views.queues(snap), workers=views.workers(snap),
            autoscaler=autoscaler, decisions=_decisions(autoscaler["snapshot"]), sla=views.sla(snap),
            alerts=views.alerts(snap), dead=_dead_letters(state, snap),
            charts=_charts(state.history.points()),
            job=job, job_error=job_error, job_query=req.query.get("job", ""),
        )
    except (TaskQueueError, OSError) as exc:
        context["error"] = state.masker.mask(f"{type(exc).__name__}: {exc}")
    return _env().get_template("dashboard.html").render(**context)
