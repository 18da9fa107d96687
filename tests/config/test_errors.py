"""Broken inputs and the exact message and location each must produce (issue 2, acceptance point 2).

Each case writes one pipeline file ``p.yaml`` (over an empty base) and loads it with a given env; the
problems must be exactly the listed lines, all of them at once.
"""

# ruff: noqa: E501 - the expected messages are exact one-line strings; wrapping them would hide them
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config.loader import load

CASES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "unknown_top": (
        "versoin: 1\n",
        {},
        [
            "p.yaml:1:1: versoin: unknown key 'versoin' (did you mean 'version'?)",
        ],
    ),
    "unknown_broker": (
        "broker:\n  ulr: redis://h:1/0\n",
        {},
        [
            "p.yaml:2:3: broker.ulr: unknown key 'ulr' (did you mean 'url'?)",
        ],
    ),
    "unknown_limits": (
        "broker:\n  limits:\n    max_payload: 1MB\n",
        {},
        [
            "p.yaml:3:5: broker.limits.max_payload: unknown key 'max_payload' (did you mean 'max_payload_bytes'?)",
        ],
    ),
    "unknown_queue_key": (
        "queues:\n  q: {priorty: 3}\n",
        {},
        [
            "p.yaml:2:7: queues.q.priorty: unknown key 'priorty' (did you mean 'priority'?)",
        ],
    ),
    "unknown_task_key": (
        "tasks:\n  t: {entry: 'json:dumps', timout: 5s}\n",
        {},
        [
            "p.yaml:2:28: tasks.t.timout: unknown key 'timout' (did you mean 'timeout'?)",
        ],
    ),
    "unknown_retries_key": (
        "tasks:\n  t:\n    entry: json:dumps\n    retries: {maxx: 3}\n",
        {},
        [
            "p.yaml:4:15: tasks.t.retries.maxx: unknown key 'maxx' (did you mean 'max'?)",
        ],
    ),
    "unknown_sla_key": (
        "autoscaler:\n  sla:\n    p99_latency_ms: 10\n",
        {},
        [
            "p.yaml:3:5: autoscaler.sla.p99_latency_ms: unknown key 'p99_latency_ms' (did you mean 'p95_latency_ms'?)",
        ],
    ),
    "unknown_schedule_key": (
        "tasks: {t: {entry: 'json:dumps'}}\nschedules:\n  s: {task: t, cron: '* * * * *', cronn: x}\n",
        {},
        [
            "p.yaml:3:35: schedules.s.cronn: unknown key 'cronn' (did you mean 'cron'?)",
        ],
    ),
    "unknown_no_suggestion": (
        "results:\n  zzz: 1\n",
        {},
        [
            "p.yaml:2:3: results.zzz: unknown key 'zzz' (valid keys: ttl)",
        ],
    ),
    "type_int": (
        "workers:\n  processes: two\n",
        {},
        [
            "p.yaml:2:14: workers.processes: expected an integer, got string 'two'",
        ],
    ),
    "type_bool": (
        "autoscaler:\n  enabled: maybe\n",
        {},
        [
            "p.yaml:2:12: autoscaler.enabled: expected true or false, got string 'maybe'",
        ],
    ),
    "type_mapping": (
        "queues: [a, b]\n",
        {},
        [
            "p.yaml:1:9: queues: expected a mapping, got a list",
        ],
    ),
    "range_port": (
        "http:\n  port: 70000\n",
        {},
        [
            "p.yaml:2:9: http.port: must be >= 0 and <= 65535 (got 70000)",
        ],
    ),
    "range_fraction": (
        "autoscaler:\n  triggers: {worker_utilization: 1.5}\n",
        {},
        [
            "p.yaml:2:34: autoscaler.triggers.worker_utilization: must be >= 0 and <= 1 (got 1.5)",
        ],
    ),
    "range_exclusive": (
        "autoscaler:\n  sla: {p95_latency_ms: 0}\n",
        {},
        [
            "p.yaml:2:25: autoscaler.sla.p95_latency_ms: must be > 0 (got 0)",
        ],
    ),
    "enum_level": (
        "logging:\n  level: verbose\n",
        {},
        [
            "p.yaml:2:10: logging.level: must be one of trace, debug, info, success, warning, error, critical (got string 'verbose')",
        ],
    ),
    "enum_suggest": (
        "logging:\n  format: jsn\n",
        {},
        [
            "p.yaml:2:11: logging.format: must be one of json, compact, pretty (got string 'jsn') (did you mean 'json'?)",
        ],
    ),
    "bad_duration": (
        "broker:\n  lease: 5x\n",
        {},
        [
            "p.yaml:2:10: broker.lease: invalid duration '5x': use a number with a unit: 250ms, 30s, 5m, 1h, 7d (a plain number is seconds)",
        ],
    ),
    "zero_duration": (
        "broker:\n  lease: 0s\n",
        {},
        [
            "p.yaml:2:10: broker.lease: invalid duration '0s': must be greater than 0",
        ],
    ),
    "bad_size": (
        "broker:\n  limits: {max_payload_bytes: 1XB}\n",
        {},
        [
            "p.yaml:2:31: broker.limits.max_payload_bytes: invalid size '1XB': use a number with a unit: 512KB, 64MB, 1GB (binary units; a plain number is bytes)",
        ],
    ),
    "bad_rate": (
        "queues:\n  q: {rate_limit: 100/week}\n",
        {},
        [
            "p.yaml:2:19: queues.q.rate_limit: invalid rate '100/week': use count/unit: 100/s, 6000/m, 1000/h (a plain number is per second)",
        ],
    ),
    "bad_cron": (
        "tasks: {t: {entry: 'json:dumps'}}\nschedules:\n  s: {task: t, cron: '61 * * * *'}\n",
        {},
        [
            "p.yaml:3:22: schedules.s.cron: invalid cron expression '61 * * * *': [61 * * * *] is not acceptable, out of range",
        ],
    ),
    "cron_fields": (
        "tasks: {t: {entry: 'json:dumps'}}\nschedules:\n  s: {task: t, cron: '* * *'}\n",
        {},
        [
            "p.yaml:3:22: schedules.s.cron: invalid cron expression '* * *': expected 5 fields (minute hour day month weekday)",
        ],
    ),
    "bad_timezone": (
        "tasks: {t: {entry: 'json:dumps'}}\nschedules:\n  s: {task: t, cron: '0 3 * * *', timezone: Europe/Pari}\n",
        {},
        [
            "p.yaml:3:45: schedules.s.timezone: unknown timezone 'Europe/Pari' (did you mean 'Europe/Paris'?)",
        ],
    ),
    "yaml_syntax": (
        "broker: {url: redis://h:1/0\n",
        {},
        [
            "p.yaml:2:1: YAML syntax error: while parsing a flow mapping (opened at line 1) did not find expected ',' or '}'",
        ],
    ),
    "yaml_indent": (
        "broker:\n  url: redis://h:1/0\n pool_size: 3\n",
        {},
        [
            "p.yaml:3:2: YAML syntax error: while parsing a block mapping (opened at line 1) did not find expected key",
        ],
    ),
    "python_tag": (
        "name: !!python/object/apply:os.system ['true']\n",
        {},
        [
            "p.yaml:1:7: name: YAML tag '!!python/object/apply:os.system' is not allowed",
        ],
    ),
    "jinja_undefined": (
        'broker:\n  url: "{{ env.NOPE_URL }}"\n',
        {},
        [
            "p.yaml:2:16: undefined template variable 'env.NOPE_URL' (set it, or give a fallback: {{ env.X | default('...') }})",
        ],
    ),
    "jinja_syntax": (
        'name: "{{ env.X "\n',
        {},
        [
            "p.yaml:1:1: template syntax error: unexpected char '\"' at 16",
        ],
    ),
    "env_unknown": (
        "",
        {"TASK_QUEUE_BROKER__ULR": "x"},
        [
            "env TASK_QUEUE_BROKER__ULR: unknown variable: it maps to no config key (broker.ulr) (did you mean 'TASK_QUEUE_BROKER__URL'?)",
        ],
    ),
    "env_bad_value": (
        "",
        {"TASK_QUEUE_WORKERS": "lots"},
        [
            "env TASK_QUEUE_WORKERS: workers.processes: expected an integer, got string 'lots'",
        ],
    ),
    "env_section": (
        "",
        {"TASK_QUEUE_BROKER": "x"},
        [
            "env TASK_QUEUE_BROKER: broker: names a section, not a value: set one key with '__', e.g. TASK_QUEUE_BROKER__URL",
        ],
    ),
    "env_bad_enum": (
        "",
        {"LOG_LEVEL": "loud"},
        [
            "env LOG_LEVEL: logging.level: must be one of trace, debug, info, success, warning, error, critical (got string 'loud')",
        ],
    ),
    "env_bad_duration": (
        "",
        {"REDIS_COMMAND_TIMEOUT": "soon"},
        [
            "env REDIS_COMMAND_TIMEOUT: broker.command_timeout: invalid duration 'soon': use a number with a unit: 250ms, 30s, 5m, 1h, 7d (a plain number is seconds)",
        ],
    ),
    "undeclared_queue": (
        "queues: {emails: {}}\ntasks:\n  t: {entry: 'json:dumps', queue: email}\n",
        {},
        [
            "p.yaml:3:35: tasks.t.queue: queue 'email' is not declared (declared: emails) (did you mean 'emails'?)",
        ],
    ),
    "entry_no_module": (
        "tasks:\n  t: {entry: 'no_such_mod_xyz:f'}\n",
        {},
        [
            "p.yaml:2:14: tasks.t.entry: entry point 'no_such_mod_xyz:f' does not import: no module named 'no_such_mod_xyz'",
        ],
    ),
    "entry_no_attr": (
        "tasks:\n  t: {entry: 'json:dump_s'}\n",
        {},
        [
            "p.yaml:2:14: tasks.t.entry: module 'json' has no function 'dump_s' (did you mean 'dumps'?)",
        ],
    ),
    "entry_format": (
        "tasks:\n  t: {entry: json.dumps}\n",
        {},
        [
            "p.yaml:2:14: tasks.t.entry: invalid entry point 'json.dumps': expected 'module.path:function'",
        ],
    ),
    "min_gt_max": (
        "autoscaler:\n  min_workers: 5\n  max_workers: 3\n",
        {},
        [
            "p.yaml:2:16: autoscaler.min_workers: min_workers (5) is greater than max_workers (3)",
        ],
    ),
    "bad_queue_name": (
        "queues:\n  'bad name!': {}\n",
        {},
        [
            "p.yaml:2:3: queues['bad name!']: invalid name 'bad name!': names must match ^[A-Za-z0-9_.-]{1,128}$",
        ],
    ),
    "bad_task_name": (
        "tasks:\n  'a:b': {entry: 'json:dumps'}\n",
        {},
        [
            "p.yaml:2:3: tasks['a:b']: invalid name 'a:b': names must match ^[A-Za-z0-9_.-]{1,128}$",
        ],
    ),
    "schedule_unknown_task": (
        "tasks: {build_report: {entry: 'json:dumps'}}\nschedules:\n  s: {task: build_reprot, cron: '0 3 * * *'}\n",
        {},
        [
            "p.yaml:3:13: schedules.s.task: unknown task 'build_reprot' (did you mean 'build_report'?)",
        ],
    ),
    "missing_entry": (
        "tasks:\n  t: {queue: default}\n",
        {},
        [
            "p.yaml:2:6: tasks.t: missing required key 'entry'",
        ],
    ),
    "duplicate_key": (
        "name: a\nname: b\n",
        {},
        [
            "p.yaml:2:1: name: duplicate key 'name' (first set at line 1)",
        ],
    ),
    "not_mapping": (
        "- a\n- b\n",
        {},
        [
            "p.yaml:1:1: top level must be a mapping, got list",
        ],
    ),
    "url_scheme": (
        "broker:\n  url: http://h:1/0\n",
        {},
        [
            "p.yaml:2:8: broker.url: unsupported URL scheme 'http': use one of redis, rediss, unix, redis+sentinel, redis+cluster, embedded",
        ],
    ),
    "http_exposed": (
        "http:\n  host: 0.0.0.0\n",
        {},
        [
            "p.yaml:2:9: http.host: serving on '0.0.0.0' (not loopback) requires http.auth_token",
        ],
    ),
    "version": (
        "version: 2\n",
        {},
        [
            "p.yaml:1:10: version: must be 1 (got integer 2)",
        ],
    ),
    "workers_queues": (
        "workers:\n  queues: [default, fast]\n",
        {},
        [
            "p.yaml:2:21: workers.queues[1]: queue 'fast' is not declared (declared: default, high_priority, low_priority)",
        ],
    ),
    "alias_bomb": (
        "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
        {},
        [
            "p.yaml:1:1: document expands to more than 100000 nodes (alias bomb?)",
        ],
    ),
    "multi": (
        "broker:\n  ulr: x\nworkers:\n  processes: 0\nlogging: {level: loud}\n",
        {},
        [
            "p.yaml:2:3: broker.ulr: unknown key 'ulr' (did you mean 'url'?)",
            "p.yaml:4:14: workers.processes: must be >= 1 and <= 1024 (got 0)",
            "p.yaml:5:18: logging.level: must be one of trace, debug, info, success, warning, error, critical (got string 'loud')",
        ],
    ),
}


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("")
    return tmp_path


@pytest.mark.parametrize("name", list(CASES))
def test_broken_input(project: Path, name: str) -> None:
    text, env, expected = CASES[name]
    (project / "p.yaml").write_text(text)
    result = load("p.yaml", base="base.yaml", env=env)
    assert [p.format() for p in result.problems] == expected
    assert result.settings is None


def test_there_are_at_least_30_distinct_cases() -> None:
    assert len({text + repr(env) for text, env, _ in CASES.values()}) >= 30


def test_schedule_kwargs_keys_must_be_identifiers(project: Path) -> None:
    text = "tasks: {t: {entry: 'json:dumps'}}\nschedules:\n  s: {task: t, cron: '* * * * *', kwargs: {'a-b': 1}}\n"
    (project / "p.yaml").write_text(text)
    result = load("p.yaml", base="base.yaml", env={})
    assert [p.format() for p in result.problems] == [
        "p.yaml:3:44: schedules.s.kwargs.a-b: invalid name 'a-b': names must match ^[A-Za-z_][A-Za-z0-9_]*$"
    ]
