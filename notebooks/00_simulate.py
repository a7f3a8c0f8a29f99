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
# # Simulate the fleet
#
# The embedded default data source: a fleet of cars and trucks recording MCAP drive logs (front
# camera, calibration, GPS, vehicle signals). The ground-truth sidecars stand in for human labels
# and are read only by the simulated labeler and by evaluation.

# %% tags=["parameters"]
upstream = None
product = None
vehicles = 2
drives_per_vehicle = 1
minutes = 0.25
seed = 7
profile = "foxglove"
width = 320
height = 192
workers = 1
first_drive = 0  # a later week of the same fleet: each vehicle's drives continue after the ones it recorded
time_of_day = None  # a mix such as {"day": 0.3, "night": 0.7}; None: SimConfig's
weather = None  # a mix such as {"clear": 0.5, "rain": 0.5}; None: SimConfig's

# %%
from IPython.display import display

from longtail.config import SimConfig
from longtail.sim.fleet import format_table, simulate_fleet
from longtail.sim.inspect import drive_signals, sample_frames

cfg = SimConfig(vehicles=vehicles, drives_per_vehicle=drives_per_vehicle, minutes=minutes, seed=seed, profile=profile,
                width=width, height=height, first_drive=first_drive,
                **{k: v for k, v in {"time_of_day": time_of_day, "weather": weather}.items() if v})
result = simulate_fleet(cfg, product["fleet"], workers=workers, progress=False)

# %% [markdown]
# ## Scenario and condition mix per drive

# %%
print(format_table(result.drives))

# %% [markdown]
# ## Vehicle signals of the first drive

# %%
drive_signals(result.out / result.drives[0].log).plot(subplots=True, figsize=(10, 8))

# %% [markdown]
# ## A few frames, with the simulator's ground truth

# %%
display(sample_frames(result.out, result.drives[0], count=4))
