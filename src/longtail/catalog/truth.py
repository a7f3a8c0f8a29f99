"""Load the simulator's ground-truth sidecars.

Only the simulated labeler and evaluation may read these; ingest and mining never do.
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from longtail.errors import SchemaError
from longtail.schemas import GT_SCHEMA

GT_DIR = "ground_truth"
"""Folder beside a fleet's drive logs holding one ground-truth sidecar per log (<drive>.parquet)."""


def load_ground_truth(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a ground-truth sidecar as two tables.

    Returns:
        ``frames``: one row per camera frame (drive_id, frame_index, timestamp_ns, conditions,
        scenario); ``objects``: one row per object with its frame_index and every field of
        `longtail.schemas.GT_OBJECT_TYPE`.

    Raises:
        SchemaError: when the file's schema is not `GT_SCHEMA`.
    """
    table = pq.read_table(path)
    if not table.schema.equals(GT_SCHEMA, check_metadata=False):
        raise SchemaError(f"{path}: not a Longtail ground-truth file (schema {table.schema.names}); "
                          "expected the columns of longtail.schemas.GT_SCHEMA")
    frames = table.drop(["objects"]).to_pandas()
    objects_col = table.column("objects").combine_chunks()
    flat = pc.list_flatten(objects_col)
    parents = pc.list_parent_indices(objects_col).to_numpy()
    objects = pd.DataFrame({name: flat.field(name).to_numpy(zero_copy_only=False) for name in flat.type.names}) \
        if len(flat) else pd.DataFrame(columns=[f.name for f in flat.type])
    objects.insert(0, "frame_index", frames["frame_index"].to_numpy()[parents] if len(flat) else [])
    return frames, objects
