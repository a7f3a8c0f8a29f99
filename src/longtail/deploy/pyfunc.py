"""The deployment as an MLflow pyfunc model: JPEG frames in, boxes out, for ``mlflow models serve``.

Request (``POST /invocations``), one row per frame, each a base64-encoded JPEG (or PNG)::

    {"dataframe_split": {"columns": ["image"], "data": [["/9j/4AAQ..."], ...]}}

Answer: ``{"predictions": [[{"category", "x1", "y1", "x2", "y2", "score"}, ...], ...]}``, one list of
boxes per frame in its pixel edges (`longtail.boxes`), at the deployment's per-class operating
thresholds: the same decoding, resize, export and thresholds as
`longtail.detector.export.DeployedDetector`, so the served answer is the deployed model's.

The model folder carries the exports and thresholds as artifacts and a copy of the ``longtail``
package as its code, so the server runs the code the deployment was checked with. Serve it from the
environment Longtail runs in (``--env-manager local``, with that environment's ``bin`` on PATH: the
server starts ``uvicorn`` from there); ``LONGTAIL_SERVE_THREADS`` caps onnxruntime's threads.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import shutil
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from longtail.detector.export import (
    BACKEND_FILES,
    EXPORT_META_FILE,
    ONNX_FILE,
    THRESHOLDS_FILE,
    TORCHSCRIPT_FILE,
    DeployedDetector,
)
from longtail.errors import InputError

IMAGE_COLUMN = "image"
_REQUIREMENTS = ("mlflow", "torch", "torchvision", "onnxruntime", "numpy", "pandas", "pillow", "pydantic")


def decode_frame(data: str | bytes) -> np.ndarray:
    """A base64 string (or raw bytes) of a JPEG or PNG -> an HxWx3 uint8 RGB array.

    Raises:
        InputError: not base64 or not a decodable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else bytes(data)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("RGB"))
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError) as exc:
        raise InputError(f"column {IMAGE_COLUMN!r}: not a base64-encoded JPEG or PNG ({exc}); send "
                         "base64.b64encode(jpeg_bytes).decode()") from None


class DetectorModel(PythonModel):
    """The pyfunc model: `DeployedDetector` behind MLflow's ``predict``."""

    def load_context(self, context: Any) -> None:
        import json

        backend = (context.model_config or {}).get("backend", "onnx")
        export_meta = json.loads(Path(context.artifacts["export"]).read_text())
        thresholds = json.loads(Path(context.artifacts["thresholds"]).read_text())["thresholds"]
        threads = int(os.environ.get("LONGTAIL_SERVE_THREADS", "0")) or None
        self.detector = DeployedDetector(context.artifacts[backend], export_meta, thresholds, backend, threads)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        """Boxes for each frame of ``model_input`` (a DataFrame with an ``image`` column of base64 JPEGs).

        No return type: MLflow reads the hints here as the model's signature (`save_pyfunc` gives it).
        """
        if IMAGE_COLUMN not in getattr(model_input, "columns", ()):
            raise InputError(f"the request lacks column {IMAGE_COLUMN!r} (base64 JPEG frames); got "
                             f"{list(getattr(model_input, 'columns', []))}")
        frames = [decode_frame(v) for v in model_input[IMAGE_COLUMN].tolist()]
        return self.detector.predict(frames)


def _requirements() -> list[str]:
    out = []
    for name in _REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def save_pyfunc(export_dir: str | os.PathLike[str], path: str | os.PathLike[str], backend: str = "onnx") -> Path:
    """Write the MLflow pyfunc model of an export folder to ``path`` (which must not exist yet).

    Args:
        export_dir: a folder with model.ts, model.onnx, export.json and thresholds.json.
        path: the MLflow model folder to create.
        backend: which export the server runs (``onnx`` or ``torchscript``; both are carried).

    Returns:
        ``path``.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    import longtail

    export_dir = Path(export_dir)
    artifacts = {"torchscript": str(export_dir / TORCHSCRIPT_FILE), "onnx": str(export_dir / ONNX_FILE),
                 "export": str(export_dir / EXPORT_META_FILE), "thresholds": str(export_dir / THRESHOLDS_FILE)}
    if backend not in BACKEND_FILES:
        raise InputError(f"save_pyfunc: invalid backend={backend!r}; valid backends are {list(BACKEND_FILES)}")
    signature = ModelSignature(inputs=Schema([ColSpec("string", IMAGE_COLUMN)]))
    with tempfile.TemporaryDirectory(prefix="longtail-code-") as tmp:
        # The package without caches and tests' leftovers: mlflow puts code/ first on sys.path when serving.
        code = Path(tmp) / "longtail"
        shutil.copytree(Path(longtail.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example.*")  # the signature is given instead
            mlflow.pyfunc.save_model(str(path), python_model=DetectorModel(), artifacts=artifacts, code_paths=[str(code)],
                                     signature=signature, pip_requirements=_requirements(),
                                     model_config={"backend": backend})
    return Path(path)
