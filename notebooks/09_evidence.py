# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Evidence: where the deployed model came from, checked, and why it was allowed
#
# The current deployment's lineage is traced down to the raw drive logs: the deployed files, the registered
# model version and its weights, the training run (code commit, environment lock, config), the dataset version
# (every file recomputed against its manifest and DVC's record), the label sets and their QA, the selection
# manifests and the failure modes they mined, and the ingested drive logs' sha256. A link that does not check out
# is reported as broken, never skipped. The evidence pack, one self-contained HTML page and its JSON twin, adds
# the gate's decision with its intervals, the evaluation, the fleet test, the model card and what is known not
# to be met. When nothing is deployed, the record says so and no pack is written.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"

# %%
import json
from pathlib import Path

import pandas as pd

from longtail.audit.evidence import evidence_task

record = evidence_task(root, product["record"])
record

# %% [markdown]
# ## The lineage, link by link

# %%
pack = json.loads(Path(record["json"]).read_text()) if record["json"] else None
pd.DataFrame(pack["lineage"]["links"]).drop(columns=["detail"]) if pack else record["reason"]
