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
# # Evaluate: is the new model good enough, on the long tail as well as the common case?
#
# The model the train step just made (the challenger) runs on the test drive logs of its dataset version:
# drives it never saw, split into the long-tail suite (frames with a trigger or a failure mode) and the
# common-case suite. Its detections are scored overall, per class and per slice (conditions, vehicle type,
# scenarios, each failure mode); the regression suites must each reach their threshold; the critical errors
# (missed or phantom pedestrians, cyclists and cut-in vehicles) are counted at the deployed operating
# threshold. When the registry has a champion, it runs on the same frames and every number is compared.
# The decision, promote or not, comes first, with every reason.
#
# This notebook is for ML engineers and shows every number. The same evaluation, for product managers, is a
# self-contained HTML report (no code) whose path is printed below.

# %% tags=["parameters"]
upstream = None
product = None
root = "data"
gate = {}

# %%
import os

import pandas as pd
import plotly.io as pio

from longtail.evaluate.figures import class_ap_figure, critical_errors_figure, slice_map_figure
from longtail.evaluate.gate import GateConfig
from longtail.evaluate.model import evaluate_model
from longtail.evaluate.run import EvalConfig
from longtail.evaluate.summary import (
    class_table,
    comparison_figure,
    comparison_table,
    critical_table,
    decision_note,
    kpi_table,
    promotion_note,
    publish_report,
    record_evaluation,
    slices_table,
    suites_table,
    targets_table,
)
from longtail.pipeline import upstream_product
from longtail.train.report import load_train_record

os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no download bars in the report
pio.renderers.default = "notebook"
pd.set_option("display.max_colwidth", None)  # show slice rules and reasons in full
trained = load_train_record(upstream_product(upstream, "run"))  # the model the train task made
model_uri = (f"models:/{trained['registered_model']}/{trained['model_version']}" if trained.get("model_version")
             else trained["model_uri"])
result = evaluate_model(root, trained["version_id"], model_uri=model_uri, tracking_uri=trained["tracking_uri"],
                        config=EvalConfig(gate=GateConfig(**gate)))
evaluation = result["evaluation"]
report = publish_report(result["report"], product["report"])  # the stable page a product manager bookmarks
record_evaluation(result, product["evaluation"], published_report=report)
print(f"Report for product managers: {report}\n  (this evaluation's own copy: {result['report']})\n"
      f"Evaluation (every number, JSON): {result['evaluation_path']}\n"
      f"Challenger: {result['model_uri']} (MLflow run {result['run_id']}) on {trained['version_id']}\n"
      f"Champion: {result['champion_uri'] or 'none yet'}")

# %% [markdown]
# ## The decision
#
# With no champion yet, the first model that passes the sanity floors becomes champion. With a champion, a
# challenger is promoted only if no suite is worse beyond its interval (a paired bootstrap over drives) and
# critical false positives plus negatives fall. When it passes, the registry's `champion` alias moves, and the
# decision with its evidence is written to evaluation.json and as tags on the model version.

# %%
decision_note(evaluation)

# %%
promotion_note(evaluation)

# %% [markdown]
# ## Targets
#
# Per-class AP@0.5 and critical-class recall targets (env file, `evaluate.gate.targets`) and each suite's
# threshold: met when the interval's low end reaches the target, not met when its high end stays below.

# %%
targets_table(evaluation)

# %% [markdown]
# ## Key numbers
#
# mAP@[.5:.95] and mAP@0.5 over every test frame; critical false positives and negatives at the operating
# threshold (the KPI the business tracks); regression suites passed.

# %%
kpi_table(evaluation)

# %% [markdown]
# ## Regression suites
#
# Each suite is a slice of the test frames and a threshold on a metric. A suite without test frames reports
# `no_data` and is not checked: label more drives to cover it.

# %%
suites_table(evaluation)

# %% [markdown]
# ## Critical errors
#
# Missed (false negative) and phantom (false positive) pedestrians, cyclists, and cars or trucks in cut-in
# frames, at the operating threshold.

# %%
critical_errors_figure(evaluation)

# %%
critical_table(evaluation)

# %% [markdown]
# ## Per class
#
# COCO-style AP (101-point interpolation) at IoU 0.5:0.95, 0.5 and 0.75; precision, recall, FP and FN at the
# operating threshold.

# %%
class_ap_figure(evaluation)

# %%
class_table(evaluation)

# %% [markdown]
# ## Slices
#
# The same metrics on each slice of the test frames: the two test suites, each condition (time of day,
# weather), vehicle type, scenario and trigger, and each failure mode. Small slices are noisy: read the frame
# and object counts with the numbers.

# %%
slice_map_figure(evaluation)

# %%
slices_table(evaluation)

# %% [markdown]
# ## Against the champion
#
# Challenger minus champion on the same test frames, worst change first.

# %%
comparison_figure(evaluation)

# %%
comparison_table(evaluation)

# %% [markdown]
# The HTML report adds example frames of the worst errors, with ground truth and predictions drawn. To look
# at the model's run and every registered version in MLflow's UI:
# `mlflow ui --backend-store-uri sqlite:///<root>/mlflow/mlflow.db`.
