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
# # Curate: find the long tail and choose what to label
#
# Every ingested frame goes into one searchable FiftyOne dataset with its drive log, vehicle, signals and
# scenario tags (night, fog, rain, glare from the image; the triggers from the vehicle's signals). Frames
# are placed on a map by how they look, the failure-mode queries run, and then a labeling batch is chosen
# within the budget: the frames most likely to teach the model something new, not a random sample.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
dataset = "longtail"
workers = 1
budget = 50
selector = "longtail"

# %%
import plotly.io as pio
from IPython.display import display

from longtail.catalog.db import open_dataset
from longtail.curate.report import (
    batch_gallery,
    batch_summary,
    batch_table,
    embedding_map,
    failure_mode_galleries,
    failure_mode_table,
    scenario_distribution,
)
from longtail.curate.run import CurateConfig, record_selected_batch, run_curate, run_select
from longtail.curate.select import SelectConfig

pio.renderers.default = "notebook"
curated = run_curate(root, CurateConfig(dataset=dataset, workers=workers), progress=False)
batch = run_select(root, SelectConfig(budget=budget, selector=selector), dataset)
record_selected_batch(root, batch, path=product["batch"])  # the batch the label task labels
frames = open_dataset(root, dataset)
print(f"dataset {curated['dataset']}: {curated['samples']} frames ({curated['added']} new) from "
      f"{len(curated['logs'])} drive logs indexed in {root}/index")

# %% [markdown]
# ## What the pool holds
#
# The share of frames with each scenario tag. Critical moments (the `trigger:` tags) are rare by nature:
# that rarity is the long tail a random sample misses.

# %%
scenario_distribution(frames)

# %% [markdown]
# ## The map of the pool
#
# Each dot is a frame, placed by how it looks (a 2-D projection of its embedding). Frames that look alike
# sit together; hover a dot for its frame and drive.

# %%
embedding_map(frames)

# %% [markdown]
# ## Failure modes
#
# Named queries for situations our models are known or suspected to get wrong. A failure mode opens the
# first time its query matches frames; those that need a model's detections stay pending until one has run.

# %%
failure_mode_table(root)

# %% [markdown]
# ### What each open failure mode looks like

# %%
failure_mode_galleries(root, frames)

# %% [markdown]
# ## The labeling batch
#
# The frames chosen for labeling within the budget, in the order they were chosen, with the reason for each.
# The `longtail` selector favours the heart of critical events, frames like the open failure modes and
# frames unlike anything already chosen, while meeting minimum shares for night, fog and rain.

# %%
batch_summary(batch)

# %%
batch_table(root, batch)

# %% [markdown]
# Against the pool: the batch's share of each scenario (a good batch over-samples the rare ones), and
# where its frames fall on the map (ringed in black).

# %%
display(scenario_distribution(frames, batch))
display(embedding_map(frames, batch))

# %%
batch_gallery(root, batch)

# %% [markdown]
# To explore the dataset, the failure-mode views and the batch in the FiftyOne App: `longtail app --root <root>`.
