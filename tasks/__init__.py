"""Example task modules referenced by the shipped pipelines: plain functions, no framework import."""
