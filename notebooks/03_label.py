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
# # Label: turn the chosen frames into checked labels and a new dataset version
#
# The labeling batch chosen in the curate step goes to Label Studio, where every frame gets a box around
# each car, truck, pedestrian and cyclist. Finished labels come back through quality checks: a frame with
# a suspicious box is held for review instead of entering the training data. The accepted labels of every
# batch so far are then frozen into a new dataset version, recorded with DVC so any model can be traced
# back to exactly the data it saw.
#
# On simulated drives, a simulated labeler plays the person: it draws the simulator's ground truth
# through Label Studio, exactly as a person's *Submit* does, and its work is counted with a published
# cost model. With `label: {oracle: false}` in the target's env file the batch waits in Label Studio for
# people instead, and the report says how far they got; once they finish, `longtail label pull` and
# `longtail label version` (or the pipeline run again with `--force`) complete it.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
dataset = "longtail"
oracle = True
remote = None
blur = True

# %%
import pandas as pd

from longtail.curate.run import selected_batch
from longtail.label import server
from longtail.label.report import (
    cost_table,
    label_summary,
    labeled_gallery,
    qa_table,
    version_summary,
    version_table,
)
from longtail.label.run import record_latest_version, run_label
from longtail.pipeline import upstream_product
from longtail.privacy import PrivacyConfig

pd.set_option("display.max_colwidth", None)  # show project addresses and reasons in full
batch_id = selected_batch(root, path=upstream_product(upstream, "batch"))
studio = server.start(root)  # the data root's own Label Studio; left running for people to look at
run = run_label(root, batch_id, oracle=oracle, dataset_name=dataset, remote=remote, privacy=PrivacyConfig(blur=blur))
record_latest_version(root, run, path=product["version"])  # the version the train task trains on
label_summary(run)

# %% [markdown]
# **No pre-labels yet.** Until a detector has been trained, labelers start from an empty frame and draw
# every box. Once training has produced a champion model, its detections are pushed with the batch as
# pre-labels, and most of the work below turns into quick corrections: accepting, nudging or deleting
# boxes instead of drawing them.

# %% [markdown]
# ## What labeling took
#
# Every action the labeler took, for the whole batch and per frame, and the time it is estimated to cost
# (about 7 s to draw a box, 1 s to accept a correct pre-label, 2 s to look over each frame).

# %%
cost_table(run.label_set)

# %% [markdown]
# ## Quality checks
#
# Each labeled frame passes these checks before it may be used for training. A frame with any finding is
# held for a reviewer, with the reason; the others are accepted.

# %%
qa_table(root, batch_id)

# %% [markdown]
# ## What the labels look like
#
# Frames of the batch with their labels drawn in class colours, held frames first.

# %%
labeled_gallery(root, batch_id)

# %% [markdown]
# ## The dataset version
#
# Accepted labels of every labeled batch, split by drive log so no drive is both trained and tested on.
# The test logs form two suites: their long-tail frames (triggers, failure modes) and the common cases.
# The version is immutable: new labels make a new version, and the DVC record can recreate this one
# byte for byte.

# %%
version_table(run.version)

# %%
version_summary(run.version, run.dvc)

# %% [markdown]
# Label Studio is left running so the project can be opened in a browser: `longtail label status --root <root>`
# prints its address (`longtail label serve --root <root>` starts it again later), and the login is in
# `<root>/labelstudio/credentials.json`. `longtail label stop --root <root>` (or `make clean`) stops it.
