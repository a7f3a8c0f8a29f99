"""Collect: ingest drive logs into a content-addressed frame store and a frame index."""
