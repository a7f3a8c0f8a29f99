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
# # Train: a detector on the new dataset version
#
# A detector is trained on the train split of the dataset version the label step built, and checked after
# every epoch on its val split: from scratch in the loop's first turn, fine-tuned from the champion in the
# next (`init_from="champion"`), with the frames mined for open failure modes drawn `mined_oversample` times
# per epoch. The test suites are never trained on or looked at here: they
# are for the evaluate step. Everything about the run goes to MLflow: its config, per-epoch metrics, the
# dataset version it saw (with its digest), the git commit, the environment lock, and the model itself,
# registered as a new version of the `longtail-detector` model.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
preset = "fcos-small-p2"
max_minutes = 10.0
epochs = 16
batch_size = 16
threads = 2
seed = 0
version = None  # a dataset version id; None: the one the label task built
version_record = None  # a dataset-version record (like datasets/latest.json); None: the upstream's `version` product
init_from = None  # None: from scratch; "champion" (fine-tune the registry's champion) or models:/<name>/<version>
mined_oversample = 1.0  # training frames mined for a failure mode are drawn this many times per epoch; 1: off
config = None  # a whole TrainConfig as a dict (a sweep's grid point); replaces the values above
sweep_id = None  # set by `longtail sweep`: tags the MLflow run so the sweep's runs compare in one table

# %%
import plotly.io as pio

from longtail.catalog.versions import load_version
from longtail.label.report import version_table
from longtail.label.run import latest_version
from longtail.train.report import (
    config_table,
    history_figure,
    history_table,
    record_train_run,
    train_summary,
    version_record_path,
)
from longtail.train.run import make_train_config, train
from longtail.train.sweep import SWEEP_TAG

pio.renderers.default = "notebook"
# The version the label task built (the one upstream with a `version` product: label, or label-2 in the
# second turn), unless a record or a sweep names one.
version_id = version or latest_version(root, path=version_record_path(upstream, version_record))
_, version_manifest = load_version(root, version_id)
config = make_train_config("notebooks/04_train.py parameters", **(config or dict(
    preset=preset, max_minutes=max_minutes, epochs=epochs, batch_size=batch_size, threads=threads, seed=seed,
    init_from=init_from, mined_oversample=mined_oversample)))
result = train(root, version_id, config, progress=False, tags={SWEEP_TAG: sweep_id} if sweep_id else None)
record_train_run(result, product["run"])  # what the evaluate task evaluates
train_summary(result)

# %% [markdown]
# ## The data it learned from
#
# Frames, drive logs and boxes per class in each split of the dataset version: train is learned from, val
# checked after each epoch, and the two test suites wait for the evaluate step. Few pedestrians or cyclists
# in train means a weak AP for them, whatever the training time.

# %%
version_table(version_manifest)

# %% [markdown]
# ## Learning curves
#
# Left, the training loss per epoch (FCOS's three terms dotted); right, mAP@0.5 on the val split, per class
# dotted. A loss that stops falling while val mAP still climbs means more epochs would help; a val mAP that
# falls while the loss keeps falling means the model is memorising its few training drives.

# %%
history_figure(result["history"], title=f"{result['run_id'][:8]} on {version_id}")

# %% [markdown]
# Every epoch's numbers: the loss and its terms, val mAP@0.5 and AP@0.5 per class, the learning rate at
# the epoch's end, images per second and seconds per epoch.

# %%
history_table(result["history"])

# %% [markdown]
# ## The config it ran with
#
# Saved with every checkpoint and the model, and in MLflow as the run's params and `config.json`.

# %%
config_table(result["config"])

# %% [markdown]
# To browse the run, its metrics and the registered model in MLflow's UI:
# `mlflow ui --backend-store-uri sqlite:///<root>/mlflow/mlflow.db`. To continue training after the time
# budget ran out: `longtail train --root <root> --resume <root>/runs/<run id>/checkpoint-<epoch>.pt`.
