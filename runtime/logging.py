"""Logging: loguru set-up, the standard ``logging`` module routed in, secrets masked, task context.

``configure(settings.logging, secrets=...)`` installs one sink in the chosen format:

- ``json``: one JSON object per line (``time``, ``level``, ``message``, ``logger``, every bound field,
  ``exception`` as masked text), for log shippers;
- ``compact``: ``12:00:00.123 INFO    message key=value ...``, for terminals and CI;
- ``pretty``: coloured, with the source location, for development.

Every record passes a masking patcher before any sink sees it: known secret values (Redis passwords,
the HTTP token, secret-looking env vars), URL userinfo passwords, ``password=...``/``token=...`` pairs and
``Bearer`` credentials are replaced with ``***`` in the message, the bound fields and the traceback text.

Task code logs through :func:`task_logger`, which binds ``job_id``, ``task``, ``queue`` and ``attempt``
so every line a task writes carries them; :func:`log_event` writes a lifecycle event at its level.
"""

from __future__ import annotations

import json
import logging as std_logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote

from loguru import logger

from runtime.config.model import LoggingSettings
from runtime.events import LEVELS, Event

if TYPE_CHECKING:
    from loguru import Logger, Message, Record

MASK = "***"
#: env var names whose values are secrets (cf. Celery's HIDDEN_SETTINGS)
SECRET_NAME = re.compile(r"API|TOKEN|KEY|SECRET|PASS|AUTH|CREDENTIAL", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|token|auth_token|secret|api[_-]?key|authorization)\b[\"']?\s*[=:]\s*"
    r"[\"']?)(?!(?:Bearer|Basic)\s)(?P<value>[^\s\"',;&}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


class SecretMasker:
    """Replaces secret values and secret-shaped substrings in text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        values = {s for s in [*self._secrets, *secrets] if s and len(s) >= _MIN_SECRET}
        # a password may appear percent-encoded (in a URL) or decoded (in an error)
        values |= {unquote(s) for s in values if len(unquote(s)) >= _MIN_SECRET}
        self._secrets = sorted(values, key=len, reverse=True)  # longest first: no partial leftovers

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        return _KEY_VALUE.sub(lambda m: f"{m['key']}{MASK}", text)

    def mask_value(self, value: Any) -> Any:
        """Mask strings inside plain data (dicts, lists); other values pass through."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {k: MASK if _secret_key(k) else self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        return value


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_NAME.search(key)) and key.lower() not in _NOT_SECRET_KEYS


_NOT_SECRET_KEYS = frozenset({"idempotency_key", "key", "task_key", "max_tokens"})


def url_password(url: str) -> str | None:
    """The password in a Redis URL's userinfo (``redis://user:pw@host``), if any."""
    match = _URL_USERINFO.search(url)
    return match["pw"] if match else None


def secrets_from_env(environ: Mapping[str, str]) -> list[str]:
    """Values of env vars whose names look secret, plus passwords inside URL-valued vars."""
    found: list[str] = []
    for name, value in environ.items():
        if SECRET_NAME.search(name) and _could_be_secret(value):
            found.append(value)
        pw = url_password(value) if "://" in value else None
        if pw:
            found.append(pw)
    return found


_PLAIN_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})


def _could_be_secret(value: str) -> bool:
    """Flags and numbers under a secret-looking name (``..._API_ENABLED=true``) are not secrets:
    masking them would blank every ``true`` in every log line."""
    v = value.strip()
    return len(v) >= 6 and v.lower() not in _PLAIN_VALUES and not v.replace(".", "").isdigit()


def secrets_of(settings: Any) -> list[str]:
    """The secret values in a :class:`runtime.config.model.Settings` (broker password, HTTP token)."""
    found: list[str] = []
    pw = url_password(settings.broker.url)
    if pw:
        found.append(pw)
    if settings.http.auth_token:
        found.append(settings.http.auth_token)
    return found


class _InterceptHandler(std_logging.Handler):
    """Routes records of the standard ``logging`` module (redis, uvicorn, libraries) into loguru."""

    def emit(self, record: std_logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # skip logging's own frames so loguru reports the caller's location
        frame: FrameType | None = sys._getframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == std_logging.__file__):
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).bind(logger=record.name).log(
            level, record.getMessage()
        )


_HIDDEN_EXTRA = ("_text", "_exc")


#: fields of the job whose task runs in this context, set by the worker per job (a ContextVar set in
#: a copied context costs well under a microsecond; ``logger.contextualize`` takes a lock and copies
#: a dict, ~8 us, too much for a no-op job). The patcher merges them into every record's ``extra``.
JOB_FIELDS: ContextVar[Mapping[str, Any] | None] = ContextVar("tqrun_job_fields", default=None)


def _patcher(masker: SecretMasker) -> Callable[[Record], None]:
    def patch(record: Record) -> None:
        record["message"] = masker.mask(record["message"])
        extra = record["extra"]
        job = JOB_FIELDS.get()
        if job:
            for key, value in job.items():
                extra.setdefault(key, value)
        for key, value in list(extra.items()):
            if key not in _HIDDEN_EXTRA:
                extra[key] = MASK if _secret_key(key) else masker.mask_value(value)
        exc = record["exception"]
        if exc is not None and exc.type is not None:
            text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
            extra["_exc"] = masker.mask(text)
        else:
            extra["_exc"] = ""
        fields = " ".join(f"{k}={v}" for k, v in extra.items() if k not in _HIDDEN_EXTRA)
        extra["_text"] = f" {fields}" if fields else ""

    return patch


def _json_line(record: Record) -> str:
    payload: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name.lower(),
        "message": record["message"],
        "logger": record["extra"].get("logger", record["name"]),
    }
    for key, value in record["extra"].items():
        if key not in _HIDDEN_EXTRA and key != "logger":
            payload[key] = value
    if record["extra"].get("_exc"):
        payload["exception"] = record["extra"]["_exc"]
    return json.dumps(payload, default=str, ensure_ascii=False)


def _format(kind: str) -> Callable[[Record], str]:
    def fmt_json(record: Record) -> str:
        record["extra"]["_line"] = _json_line(record)
        return "{extra[_line]}\n"

    def fmt_compact(record: Record) -> str:
        tail = "{extra[_exc]}" if record["extra"].get("_exc") else ""
        return "{time:HH:mm:ss.SSS} {level: <7} {message}{extra[_text]}\n" + tail

    def fmt_pretty(record: Record) -> str:
        tail = "{extra[_exc]}" if record["extra"].get("_exc") else ""
        return (
            "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
            "<cyan>{name}:{function}:{line}</cyan> <level>{message}</level><dim>{extra[_text]}</dim>\n" + tail
        )

    return {"json": fmt_json, "compact": fmt_compact, "pretty": fmt_pretty}[kind]


Sink = TextIO | Callable[["Message"], None]


def configure(
    settings: LoggingSettings,
    *,
    secrets: Iterable[str] = (),
    sink: Sink | None = None,
    intercept_stdlib: bool = True,
) -> SecretMasker:
    """Replace loguru's handlers with one sink in ``settings.format`` at ``settings.level``.

    Returns the masker so callers (HTTP, CLI) can mask their own output with the same secrets.
    """
    masker = SecretMasker(secrets)
    logger.remove()
    logger.configure(patcher=_patcher(masker))
    target: Sink = sink if sink is not None else sys.stderr
    colorize = settings.format == "pretty" and getattr(target, "isatty", lambda: False)()
    logger.add(
        target,
        level=settings.level.upper(),
        format=_format(settings.format),
        colorize=colorize,
        backtrace=False,
        diagnose=False,  # diagnose prints local variables: they may hold secrets
        enqueue=False,
    )
    if intercept_stdlib:
        std_logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            std_logging.getLogger(name).handlers = []
            std_logging.getLogger(name).propagate = True
    return masker


@contextmanager
def task_context(job_id: str, task: str, queue: str, attempt: int) -> Iterator[None]:
    """Every loguru (and routed stdlib) line logged inside carries the job's fields.

    It sets :data:`JOB_FIELDS` (a context variable the patcher merges into each record): an asyncio
    task created inside the block inherits it; for a thread pool, submit
    ``contextvars.copy_context().run`` of the call from inside the block (executors do not copy
    context on their own). The worker does the same per job with a copied context.
    """
    token = JOB_FIELDS.set({"job_id": job_id, "task": task, "queue": queue, "attempt": attempt})
    try:
        yield
    finally:
        JOB_FIELDS.reset(token)


def task_logger(job_id: str, task: str, queue: str, attempt: int) -> Logger:
    """A logger whose every line carries the job's id, task, queue and attempt."""
    return logger.bind(job_id=job_id, task=task, queue=queue, attempt=attempt)


def log_event(log: Logger, event: Event, message: str = "", **fields: Any) -> None:
    """Write lifecycle ``event`` at its level (``events.LEVELS``) with ``event=<name>`` bound."""
    text = f"{event.value} {message}".rstrip()
    log.bind(event=event.value, **fields).opt(depth=1).log(LEVELS[event], text)
