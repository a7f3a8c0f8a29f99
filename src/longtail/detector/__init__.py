"""The detector, shared by every stage that runs a model: presets and building (`presets`), weights
on disk and in MLflow (`model`), the registry and its champion alias (`registry`), batch
prediction (`predict`), the backbone embedder (`embed`), detection metrics (`metrics`) and
per-class operating thresholds (`calibrate`)."""
