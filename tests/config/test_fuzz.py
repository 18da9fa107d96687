"""Hostile and random input never crashes the loader: every outcome is Settings or located problems
(reliability.md B5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.config.loader import load
from runtime.config.schema import PIPELINE, SchemaSet

KEYS = st.sampled_from(
    [
        "broker",
        "url",
        "queues",
        "default",
        "tasks",
        "t",
        "entry",
        "queue",
        "workers",
        "processes",
        "lease",
        "autoscaler",
        "min_workers",
        "max_workers",
        "sla",
        "http",
        "port",
        "logging",
        "level",
        "schedules",
        "cron",
        "rate_limit",
        "x",
        "a b",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["5m", "100/s", "1MB", "json:dumps", "* * * * *", "redis://u:p@h:1/0", "{{ env.X }}"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    result = load(path, base=path, env=env or {})
    assert (result.settings is None) == bool(result.problems)
    for problem in result.problems:
        line = problem.format()
        assert "\n" not in line
        assert ":p@" not in line  # URL passwords are masked


@FUZZ
@given(data=st.dictionaries(KEYS, VALUES, max_size=5))
def test_random_documents(tmp_path: Path, data: dict[str, Any]) -> None:
    _check(tmp_path, yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("ab:{}[]-&*!|>'\"#%@ \n\t,?1.")), max_size=80))
def test_random_text(tmp_path: Path, text: str) -> None:
    _check(tmp_path, text)


@FUZZ
@given(
    env=st.dictionaries(
        st.sampled_from(
            [
                "TASK_QUEUE_WORKERS",
                "TASK_QUEUE_BROKER__URL",
                "LOG_LEVEL",
                "TASK_QUEUE_QUEUES__DEFAULT__PRIORITY",
                "TASK_QUEUE_X",
                "REDIS_URL",
                "TASK_QUEUE_HTTP",
                "TASK_QUEUE_AUTOSCALER__SLA__SUCCESS_RATE",
            ]
        ),
        st.text(max_size=10),
        max_size=4,
    )
)
def test_random_env(tmp_path: Path, env: dict[str, str]) -> None:
    _check(tmp_path, "", env)


def test_schema_walk_is_total() -> None:
    schemas = SchemaSet.load()
    assert schemas.at(PIPELINE, ("queues", "any", "priority")) is not None
    assert schemas.at(PIPELINE, ("broker", "nope")) is None
    assert schemas.at(PIPELINE, ("broker", "url", "deeper")) is None
