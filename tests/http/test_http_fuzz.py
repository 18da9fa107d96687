"""Schemathesis fuzzes every operation of the OpenAPI document: no 5xx, responses match the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from http_support import auth
from hypothesis import HealthCheck, settings

from runtime.http.app import create_app
from runtime.http.state import HttpState


@pytest.fixture
def api_schema(state: HttpState) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(state))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_shapes(case: Any) -> None:
    headers = auth() if case.method == "POST" else None
    case.call_and_validate(headers=headers)
