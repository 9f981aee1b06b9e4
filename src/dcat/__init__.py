"""dcat: train with many sensors, deploy with one (D-CAT, Daher, Wang, Mielle, ICRA 2026).

The core (losses, attention, encoders, model) imports only torch; the training engine lives in
:mod:`dcat.training.engine` and is imported on demand. Names are imported lazily, on first use,
so the
deployment path (:mod:`dcat.deploy.predict`) runs where only numpy and onnxruntime are installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ModalityNet": "dcat.nn.model",
    "ModalityOutput": "dcat.nn.model",
    "SelfAttention": "dcat.nn.attention",
    "create_encoder": "dcat.nn.encoders",
    "contrastive_loss": "dcat.nn.peer_losses",
    "cross_attention_distance": "dcat.nn.losses",
    "cross_attention_loss": "dcat.nn.losses",
    "feature_loss": "dcat.nn.peer_losses",
    "list_encoders": "dcat.nn.encoders",
    "list_methods": "dcat.training.methods",
    "logit_kd_loss": "dcat.nn.peer_losses",
    "mcma_mask": "dcat.nn.losses",
    "register_encoder": "dcat.nn.encoders",
    "register_method": "dcat.training.methods",
}

__all__ = [
    "ModalityNet",
    "ModalityOutput",
    "SelfAttention",
    "__version__",
    "contrastive_loss",
    "create_encoder",
    "cross_attention_distance",
    "cross_attention_loss",
    "feature_loss",
    "list_encoders",
    "list_methods",
    "logit_kd_loss",
    "mcma_mask",
    "register_encoder",
    "register_method",
]

if TYPE_CHECKING:
    from dcat.nn.attention import SelfAttention
    from dcat.nn.encoders import create_encoder, list_encoders, register_encoder
    from dcat.nn.losses import cross_attention_distance, cross_attention_loss, mcma_mask
    from dcat.nn.model import ModalityNet, ModalityOutput
    from dcat.nn.peer_losses import contrastive_loss, feature_loss, logit_kd_loss
    from dcat.training.methods import list_methods, register_method


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dcat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
