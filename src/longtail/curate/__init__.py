"""Curate: the FiftyOne dataset, scenario tags, embeddings, failure modes and batch selection."""
