"""A password in a broker URL, and the HTTP auth token, never appear in any output (acceptance point 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli.lint import config_cmd, lint
from runtime.config import mask_url, redact
from runtime.config.loader import load

SECRET = "s3cr3t-pa55"
TOKEN = "tok-9f8e7d"


@pytest.fixture()
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.yaml"
    path.write_text(
        f'broker: {{url: "redis://app:{SECRET}@db.internal:6379/0"}}\nhttp: {{auth_token: {TOKEN}}}\n'
    )
    (tmp_path / "task-queue.yaml").write_text("")
    return path


def test_mask_url() -> None:
    assert mask_url(f"redis://app:{SECRET}@h:6379/0") == "redis://app:***@h:6379/0"
    assert mask_url(f"rediss://:{SECRET}@h/0") == "rediss://:***@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"
    assert SECRET not in redact(f"could not reach redis+sentinel://u:{SECRET}@a:26379,b:26379/m/0 (timeout)")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_config_output_masks_secrets(pipeline: Path, fmt: str) -> None:
    result = CliRunner().invoke(config_cmd, [str(pipeline), "--format", fmt], env={"PATH": "/usr/bin"})
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and TOKEN not in result.output
    assert "redis://app:***@db.internal:6379/0" in result.output
    if fmt == "json":
        data = json.loads(result.output)
        assert data["config"]["http"]["auth_token"] == "***"


def test_env_url_password_masked(pipeline: Path) -> None:
    env = {"REDIS_URL": f"redis://u:{SECRET}@other:6379/1", "PATH": "/usr/bin"}
    result = CliRunner().invoke(config_cmd, [str(pipeline)], env=env)
    assert result.exit_code == 0
    assert SECRET not in result.output
    assert 'broker.url = "redis://u:***@other:6379/1"' in result.output
    assert "# env REDIS_URL" in result.output


def test_errors_never_echo_secrets(pipeline: Path) -> None:
    pipeline.write_text(
        f'broker: {{url: "http://app:{SECRET}@db:6379/0", pool_size: x}}\nhttp: {{auth_token: 5}}\n'
    )
    problems = [p.format() for p in load(pipeline, env={}).problems]
    assert problems and all(SECRET not in p for p in problems)
    result = CliRunner().invoke(lint, [str(pipeline), "--format", "github"])
    assert result.exit_code == 1 and SECRET not in result.output


def test_bad_env_url_is_masked_in_errors(pipeline: Path) -> None:
    problems = [p.format() for p in load(pipeline, env={"REDIS_URL": f"ftp://u:{SECRET}@h/0"}).problems]
    assert problems == [
        "env REDIS_URL: broker.url: unsupported URL scheme 'ftp': "
        "use one of redis, rediss, unix, redis+sentinel, redis+cluster, embedded"
    ]


def test_auth_token_type_error_does_not_show_the_value(pipeline: Path) -> None:
    pipeline.write_text("http: {auth_token: [a, b]}\n")
    assert [p.format() for p in load("p.yaml", env={}).problems] == [
        "p.yaml:1:20: http.auth_token: expected a string or null, got ***"
    ]


def test_settings_repr_hides_secrets(pipeline: Path) -> None:
    settings = load(pipeline, env={}).settings
    assert settings is not None
    assert SECRET not in repr(settings) and TOKEN not in repr(settings)
    assert "redis://app:***@db.internal:6379/0" in repr(settings.broker)
    assert settings.broker.url.endswith(f"{SECRET}@db.internal:6379/0")  # the real value is still there
