"""The autoscaler: measured signals, a pure policy, and the controller that runs it in the supervisor.

- :mod:`runtime.autoscaler.signals`: telemetry samples -> the five signals and SLA figures (pure);
- :mod:`runtime.autoscaler.policy`: ``decide(window, config, state) -> Decision`` (pure);
- :mod:`runtime.autoscaler.state`: the state carried between decisions (stored in Redis);
- :mod:`runtime.autoscaler.controller`: reads Redis, calls ``decide()``, shares the target across hosts.
"""
