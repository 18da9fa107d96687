"""Storage layer: the only package that talks to Redis (keys, Lua scripts, brokers, connections).

Processes use the protocols in ``runtime.broker.base``; ``runtime.broker.connection.connect`` builds
the Redis implementation from ``Settings``.
"""
