"""dcat: train with many sensors, deploy with one (D-CAT, Daher, Wang, Mielle, ICRA 2026).

The core (losses, attention, encoders, model) imports only torch; the training engine lives in
:mod:`dcat.training.engine` and is imported on demand. Names are imported lazily, on first use,
so the deployment path (:mod:`dcat.deploy.predict`) runs where only numpy and onnxruntime are
installed.
"""

from __future__ import annotations

from dcat.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "dcat.nn.attention": ["SelfAttention"],
    "dcat.nn.encoders": ["create_encoder", "list_encoders", "register_encoder"],
    "dcat.nn.losses": ["cross_attention_distance", "cross_attention_loss", "mcma_mask"],
    "dcat.nn.model": ["ModalityNet", "ModalityOutput"],
    "dcat.nn.peer_losses": ["contrastive_loss", "feature_loss", "logit_kd_loss"],
    "dcat.training.methods": ["list_methods", "register_method"],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
