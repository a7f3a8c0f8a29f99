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
# # KPI: what this turn of the loop changed
#
# The model this turn trained (v2) against the champion before it (v1): critical false positives plus
# negatives (pedestrian, cyclist, cut-in vehicle) on the same test frames, overall, on the long-tail and
# common suites and per failure mode; the fleet test of each turn on the same seeds (disengagements,
# phantom braking, missed hazards per 100 km); what labeling the turn cost; and, per failure mode, the time
# from its discovery to the deployment that fixed it. Every difference comes with its 95% interval and a
# verdict. If the gate refused v2, the report says why and the champion stays v1.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
evaluation = None  # the turn's evaluation (record or evaluation.json); None: upstream evaluate-2's
fleet_test_before = None  # fleet_test.json of the turn before (v1 deployed); None: upstream fleet-test's
fleet_test_after = None  # fleet_test.json of this turn (same seeds); None: upstream fleet-test-2's
label_batch = None  # the turn's labeling batch id, label set manifest or latest.json; None: upstream label-2's

# %%
import pandas as pd

from longtail.kpi import build_kpi, format_kpi, render_kpi_html, save_kpi

# Paths given as parameters win; otherwise the products of the turn's tasks (pipeline.yaml).
evaluation = evaluation or upstream["evaluate-2"]["evaluation"]
fleet_test_before = fleet_test_before or upstream["fleet-test"]["results"]
fleet_test_after = fleet_test_after or upstream["fleet-test-2"]["results"]
label_batch = label_batch or upstream["label-2"]["version"]
kpi = build_kpi(root, fleet_test_before, fleet_test_after, evaluation, label_batch)
save_kpi(kpi, product["kpi"])
report = render_kpi_html(kpi, product["report"])
print(format_kpi(kpi))
print(f"\nKPI report for product managers: {report}\nKPI (JSON): {product['kpi']}")

# %% [markdown]
# ## Critical errors, every suite and group

# %%
pd.DataFrame(kpi["critical"])

# %% [markdown]
# ## Fleet tests, per 100 km

# %%
pd.DataFrame(kpi["fleet"]["metrics"])

# %% [markdown]
# ## Time to model update, per failure mode (seconds)

# %%
pd.DataFrame(kpi["time_to_model_update"])[["failure_mode", "status", "discovered_at", "deployment", "total_s"]]
