"""Audit: where a deployed model came from (`lineage`) and the evidence pack a reviewer reads (`evidence`).

This package reads what the stages declared (records under the data root, the MLflow registry) and
recomputes digests; it imports no stage package.
"""
