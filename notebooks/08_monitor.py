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
# # Monitor: do the new drives still look like what the champion was trained on?
#
# Every drive log ingested since the last run is one batch. The champion embeds its keyframes and its
# training drives' keyframes: a domain classifier that tells them apart well (ROC AUC), or an MMD test with a
# small permutation p-value, means the fleet now drives where the training data did not (drives are the unit
# of both tests: frames of one drive are near-duplicates). Beside drift: the champion's confidence and class
# histograms against its validation drives, a challenger in shadow mode (frames where the two disagree on a
# pedestrian, cyclist or vehicle become the `shadow_disagreement` trigger for curation), the condition mix,
# and trigger and disengagement rates per 100 km. A breach of the target's thresholds (env file, `monitor:`)
# opens or updates a failure mode that the next curation mines.
#
# The same numbers, for product managers, are a self-contained HTML report whose path is printed below.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
monitor = {}

# %%
import pandas as pd
import plotly.io as pio

from longtail.catalog.monitoring import list_monitoring_records
from longtail.config import MonitorConfig
from longtail.monitor.figures import (
    class_figure,
    confidence_figure,
    drift_trend_figure,
    mix_trend_figure,
    rates_trend_figure,
    shadow_trend_figure,
)
from longtail.monitor.report import batches_table, breaches_table, render_report
from longtail.monitor.run import monitor_task

pio.renderers.default = "notebook"
pd.set_option("display.max_colwidth", None)
record, note = monitor_task(root, MonitorConfig(**monitor))
report = render_report(root, product["report"] if product else f"{root}/reports/monitoring.html", note)
history = list_monitoring_records(root)
print(f"Report for product managers: {report.path}\n"
      f"This run: {'batch ' + record['batch_id'] if record else note or 'no drive log ingested since the last run'}; "
      f"{len(history)} batch(es) monitored, {report.open_breaches} open breach(es)")

# %% [markdown]
# ## Open breaches
#
# Each opened (or updated) a failure mode in the registry with example frames and its evidence: the metric,
# its value, the threshold and the batch.

# %%
breaches_table(root)

# %% [markdown]
# ## Drift across batches
#
# Left: the domain classifier's out-of-fold ROC AUC (0.5: the new drives look like the training drives).
# Right: the MMD test's p-value (log scale). Dashed: the thresholds. One colour per champion version.

# %%
drift_trend_figure(history)

# %% [markdown]
# ## Triggers, disengagements and shadow mode

# %%
rates_trend_figure(history)

# %%
shadow_trend_figure(history)

# %% [markdown]
# ## Conditions

# %%
mix_trend_figure(history, "time_of_day")

# %%
mix_trend_figure(history, "weather")

# %% [markdown]
# ## The champion's predictions on the latest batch, against its validation drives

# %%
confidence_figure(history[-1]) if history else None

# %%
class_figure(history[-1]) if history else None

# %% [markdown]
# ## Every batch

# %%
batches_table(history)
