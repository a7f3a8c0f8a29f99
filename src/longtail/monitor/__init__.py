"""The monitor stage: each newly ingested batch of drive logs, watched against the champion's training drives.

Drift on the champion's embeddings (`drift`), its predictions and a challenger's in shadow
(`predictions`), condition mix and trigger rates (`batch`), breaches of the target's thresholds
that open failure modes for the next curation (`breaches`), the record per batch (`run`) and the
report for product managers (`report`).
"""
