"""Sim: the simulated fleet that records MCAP drive logs with ground truth (the embedded data source)."""
