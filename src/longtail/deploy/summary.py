"""What notebooks/06_deploy.py shows: the deployment, its parity with PyTorch, its model card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Markdown:
    """Markdown text that a notebook renders (and prints as itself)."""

    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def deployment_note(result: Mapping[str, Any]) -> Markdown:
    """One paragraph: what was deployed (or why nothing was), where, and whether it is new."""
    record = result.get("record")
    if record is None:
        return Markdown(f"**Nothing deployed.** {result.get('reason', '')}")
    what = "Deployed" if result.get("created") else "Already deployed (nothing changed)"
    return Markdown(f"**{what}: `{record['model']['uri']}` as `{record['deployment_id']}`** ({record['created_at']}), "
                    f"in `{record['path']}`. Parity on {record['parity']['frames_description']}: "
                    f"{'passed' if record['parity']['passed'] else 'FAILED'}. Serve it with `mlflow models serve -m "
                    f"{record['path']}/{record['pyfunc']} --env-manager local`.")


def parity_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """One row per export: largest box (px) and score differences from PyTorch, unmatched detections, ms per frame."""
    record = result.get("record")
    if record is None:
        return pd.DataFrame()
    tol = record["parity"]["tolerance"]
    rows = {b: {"max box difference (px)": r["max_box_diff"], "max score difference": r["max_score_diff"],
                "unmatched detections": r["unmatched"], "ms per frame": r["ms_per_frame"],
                "box tolerance (px)": tol["box_px"], "score tolerance": tol["score"]}
            for b, r in record["parity"]["backends"].items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def files_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """The deployment's files outside the MLflow model's code copy, with size and sha256."""
    record = result.get("record")
    if record is None:
        return pd.DataFrame()
    folder = Path(record["path"])
    rows = [{"file": name, "bytes": (folder / name).stat().st_size, "sha256": digest}
            for name, digest in record["files"].items() if not name.startswith(f"{record['pyfunc']}/code/")]
    return pd.DataFrame(rows).set_index("file")


def model_card(result: Mapping[str, Any]) -> Markdown:
    """The model card, rendered."""
    record = result.get("record")
    if record is None:
        return Markdown("")
    return Markdown((Path(record["path"]) / record["model_card"]).read_text())
