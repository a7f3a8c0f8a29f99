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
# # Deploy: the champion, exported, checked and ready to serve
#
# The model behind the registry's `champion` alias (the evaluate step's gate moves it) is exported to
# TorchScript and ONNX. Before anything is kept, PyTorch, TorchScript and onnxruntime run on test frames of the
# dataset version and must agree (the tolerance is printed with the numbers); otherwise nothing is deployed. The
# deployment folder then holds both exports, the per-class operating thresholds, a model card, an MLflow pyfunc
# model for `mlflow models serve`, and the record, written last. `deployments/current.json` points at it: the
# fleet test and the monitor run that model. Deploying the same champion again changes nothing.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
parity_frames = 32
box_tolerance = 0.5
score_tolerance = 0.001

# %%
from pathlib import Path

from longtail.deploy.run import deploy_task, make_deploy_config, record_deploy_task
from longtail.deploy.summary import deployment_note, files_table, model_card, parity_table

config = make_deploy_config("notebooks/06_deploy.py parameters", parity_frames=parity_frames,
                            box_tolerance_px=box_tolerance, score_tolerance=score_tolerance)
result = deploy_task(root, config)  # writes DATA/deployments/current.json, turn 1's product
if Path(product["deployment"]).name != "current.json":  # a later turn records what it left deployed
    record_deploy_task(result, product["deployment"])
deployment_note(result)

# %% [markdown]
# ## Parity with PyTorch
#
# Largest differences between each export's detections and PyTorch's over matched detections (same class,
# nearest box), and detections clearly above their threshold that the other side lacks.

# %%
parity_table(result)

# %% [markdown]
# ## The files, with their sha256 as the record holds them

# %%
files_table(result)

# %% [markdown]
# ## Model card

# %%
model_card(result)
