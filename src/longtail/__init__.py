"""Longtail: an open-source data engine for ADAS perception.

Collect -> Curate -> Label -> Train -> Evaluate -> Deploy -> Monitor -> Retrain, with lineage
from every deployed model back to the raw drive logs.
"""

from longtail._runtime import configure_environment

configure_environment()

__version__ = "0.1.0"
