"""Autoscaler simulator: replays load traces through tqrun's real ``decide()`` and four baselines."""
