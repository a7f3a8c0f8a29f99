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
# # Collect: ingest the fleet's drive logs
#
# Keyframes, and every frame around a trigger (hard braking, disengagement, harsh steering, ADAS
# alerts), go into the content-addressed frame store; each log gets a frame index with its signal
# features and a manifest. Damaged logs keep what was readable and say why.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
workers = 1
keyframe_hz = 2.0
signal_map = {}

# %%
import plotly.io as pio
from IPython.display import display

from longtail.catalog.frames import load_frame_index
from longtail.config import IngestConfig
from longtail.ingest.ingest import ingest
from longtail.ingest.manifest import record_ingest_batch
from longtail.ingest.report import frame_gallery, log_table, trigger_timeline
from longtail.ingest.signals import resolve_signal_map
from longtail.pipeline import upstream_product

pio.renderers.default = "notebook"
config = IngestConfig(keyframe_hz=keyframe_hz, signal_map=resolve_signal_map(signal_map, "ingest.signal_map"))
fleet = upstream_product(upstream, "fleet")
results = ingest([fleet], root, config, workers=workers, progress=False)
if "record" in product:  # a later week: the frame index is shared, this record says which logs came in
    record_ingest_batch(results, product["record"], [fleet])

# %% [markdown]
# ## What came in

# %%
log_table(root)

# %% [markdown]
# ## Triggers on a timeline (the log with the most triggers)

# %%
trigger_timeline(root)

# %% [markdown]
# ## Frames: a few keyframes and the frames of the first triggers

# %%
frames = load_frame_index(root)
display(frame_gallery(root, frames[frames.keyframe].iloc[:: max(len(frames) // 8, 1)].head(4)))
display(frame_gallery(root, frames[frames.triggers.map(len) > 0].iloc[::5].head(8)))
