"""dcat: train with many sensors, deploy with one (D-CAT, Daher, Wang, Mielle, ICRA 2026).

The core (losses, attention, encoders, model) imports only torch; the training engine lives in
:mod:`dcat.engine` and is imported on demand.
"""

from dcat.attention import SelfAttention
from dcat.encoders import create_encoder, list_encoders, register_encoder
from dcat.losses import cross_attention_distance, cross_attention_loss, mcma_mask
from dcat.model import ModalityNet, ModalityOutput

__version__ = "0.1.0"

__all__ = [
    "ModalityNet",
    "ModalityOutput",
    "SelfAttention",
    "__version__",
    "create_encoder",
    "cross_attention_distance",
    "cross_attention_loss",
    "list_encoders",
    "mcma_mask",
    "register_encoder",
]
