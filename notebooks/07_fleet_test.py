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
# # Fleet test: the deployed model drives
#
# A fixed, seeded test fleet (every critical scenario, car and truck, every time of day and weather) drives
# twice on the same seeds: once with the simulator's truth perception (the reference) and once with the
# deployment from `DATA/deployments/current.json`, whose boxes the ADAS (ACC, FCW, AEB) acts on. A missed
# pedestrian is not braked for; a phantom box is. The driver takes over when the road demands it. Counted per
# 100 km, with 95% bootstrap intervals over drives and the paired difference to truth: disengagements, FCW and
# AEB alerts, phantom braking, missed hazards, collisions and near misses. A challenger in the registry rides
# along in shadow mode. The drive logs (with the model's boxes on `/camera/front/detections`) open in Foxglove.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
fleet_test = {}
shadow = True

# %%
from pathlib import Path

from longtail.sim.fleet_report import format_fleet_test_table, make_fleet_test_figure
from longtail.sim.fleet_task import run_fleet_test_task
from longtail.sim.fleet_test import FleetTestConfig

results = run_fleet_test_task(root, FleetTestConfig(**fleet_test), Path(product["results"]).parent,
                              product["report"], shadow=shadow)
print(f"Report for product managers: {product['report']}")
print(format_fleet_test_table(results))

# %%
make_fleet_test_figure(results)
