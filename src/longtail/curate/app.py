"""Open the FiftyOne App on a data root's dataset, locally or headless on a remote machine."""

from __future__ import annotations

import logging
import os
from typing import Any

from longtail.catalog.db import DEFAULT_DATASET, open_dataset
from longtail.catalog.failure_modes import get_failure_modes, saved_view_name
from longtail.errors import LongtailError

log = logging.getLogger(__name__)


def launch_app(root: str | os.PathLike[str], dataset_name: str = DEFAULT_DATASET, address: str = "127.0.0.1",
               port: int = 5151, failure_mode: str | None = None, wait: bool = True) -> Any:
    """Serve the FiftyOne App on the dataset (its failure-mode views saved), and block.

    Args:
        root: the data root.
        dataset_name: the FiftyOne dataset.
        address: address to serve on (0.0.0.0 to reach it from another machine).
        port: port to serve on.
        failure_mode: open on this failure mode's saved view instead of the whole dataset.
        wait: block until interrupted (False returns the session, for notebooks and tests).

    Raises:
        UnknownFailureModeError: for a failure mode not in the registry.
        LongtailError: when the port is not usable.
    """
    if not 1 <= port <= 65535:
        raise LongtailError(f"--port {port}: must be within 1..65535")
    if failure_mode is not None:
        get_failure_modes(root, [failure_mode])
    dataset = open_dataset(root, dataset_name)
    import fiftyone as fo

    view = None
    if failure_mode is not None:
        name = saved_view_name(failure_mode)
        if not dataset.has_saved_view(name):
            raise LongtailError(f"failure mode {failure_mode!r} has no saved view yet (it matched no frames); "
                                "run `longtail curate` after ingesting more drives")
        view = dataset.load_saved_view(name)
    session = fo.launch_app(dataset, view=view, remote=True, address=address, port=port, auto=False)
    log.info("FiftyOne App serving dataset %s (%d frames, saved views: %s) at http://%s:%d", dataset.name,
             len(dataset), ", ".join(dataset.list_saved_views()) or "none", address, port)
    if wait:
        session.wait(-1)
    return session
