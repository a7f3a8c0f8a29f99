"""Label: pre-labels, Label Studio round trips, the simulated labeler, label QA and dataset versions."""
