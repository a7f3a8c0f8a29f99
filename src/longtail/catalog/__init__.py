"""The shared floor under the stages: where things live in a data root, and the readers of what
one stage hands to the next (frame index, dataset versions, the failure-mode registry, the
curated FiftyOne dataset, the simulator's ground truth).

Stages (`longtail.sim`, `ingest`, `curate`, `label`, `train`, `evaluate`) import from here and
from `longtail.detector`, never from each other (import-linter checks it: pyproject.toml).
"""
