"""The report task fired by the cron schedules of the example pipelines."""

from __future__ import annotations

import datetime as dt
import platform


def build_report(kind: str = "daily", sections: list[str] | None = None) -> dict[str, object]:
    """Assemble a small report document (what a nightly job would write somewhere)."""
    chosen = sections or ["summary"]
    now = dt.datetime.now(dt.UTC)
    return {
        "kind": kind,
        "generated_at": now.isoformat(timespec="seconds"),
        "host": platform.node(),
        "sections": {name: f"{name} for {now.date().isoformat()}" for name in chosen},
    }
