"""Test-only task modules used by tests/worker and tests/fault."""
