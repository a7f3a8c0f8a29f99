"""Embeddings from a detector's backbone: how curation sees frames once a champion exists."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from longtail.detector.predict import predict


class BackboneEmbedder:
    """Embeddings from a torchvision detector's backbone.

    Args:
        model: a torchvision detection model with ``transform`` and ``backbone``.
        key: the model's name and version (the embedding cache is keyed by it).
        batch_size: images per forward pass.
    """

    def __init__(self, model: torch.nn.Module, key: str, batch_size: int = 16) -> None:
        self.model = model.eval()
        self.key = key
        self.batch_size = batch_size
        self.dim = self._probe()

    def _probe(self) -> int:
        with torch.no_grad():
            return int(self._forward([torch.zeros(3, 64, 64)]).shape[1])

    def _forward(self, images: list[Any]) -> Any:
        transform: Any = self.model.transform
        backbone: Any = self.model.backbone
        batch, _ = transform(images)
        feats = backbone(batch.tensors)
        levels = feats.values() if isinstance(feats, Mapping) else [feats]
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in levels], dim=1)
        return torch.nn.functional.normalize(pooled, dim=1)

    def embed(self, images: Sequence[bytes], sources: Sequence[str]) -> np.ndarray:
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        out = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                tensors = []
                for data, src in zip(images[start:start + self.batch_size], sources[start:start + self.batch_size],
                                     strict=True):
                    try:
                        tensors.append(pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB")).float() / 255.0)
                    except Exception as exc:
                        raise ValueError(f"{src}: cannot decode the image ({exc})") from exc
                out.append(self._forward(tensors).numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


@torch.inference_mode()
def predict_and_embed(model: torch.nn.Module, images: Sequence[torch.Tensor], score_threshold: float = 0.0
                      ) -> tuple[list[list[dict[str, Any]]], np.ndarray]:
    """One forward pass giving both a detector's boxes (`longtail.detector.predict.predict`) and
    its pooled backbone embeddings (`BackboneEmbedder`'s, for the same batch): curation needs both
    for a new champion's frames, and the backbone is most of the cost.

    Returns:
        (per image its box dicts, highest score first; float32 (len(images), dim) unit vectors).
    """
    captured: list[Any] = []
    backbone: Any = model.backbone
    handle = backbone.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        boxes = predict(model, images, score_threshold)
    finally:
        handle.remove()
    feats = captured[0]
    levels = feats.values() if isinstance(feats, Mapping) else [feats]
    pooled = torch.cat([f.mean(dim=(2, 3)) for f in levels], dim=1)
    return boxes, torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)
