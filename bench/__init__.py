"""Benchmarks: tqrun and its peers side by side in one run (``python -m bench``; see bench/README.md)."""
