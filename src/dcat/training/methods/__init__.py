"""Transfer methods, created by name from a registry (``@register_method``).

Built in: ``dcat`` (the paper's cross-attention loss, option ``mcma``), and the peers'
baselines ``logit_kd``, ``feature``, ``contrastive``, ``dkd``, ``rkd`` and ``sp``,
``virtual`` (the target also learns from virtual samples of the source modality) and
``pseudo_label`` (the source's confident predictions as hard labels). Importing
this package registers them.
"""

from dcat.training.methods.registry import (
    ALIASES,
    METHODS,
    SOURCE_INPUTS,
    MethodVariant,
    TransferBatch,
    TransferMethod,
    get_method,
    list_methods,
    method_names,
    register_method,
    resolve_method,
)

# Registration order is the report's column order.
from dcat.training.methods.cross_attention import CrossAttentionTransfer  # isort: skip
from dcat.training.methods.logit_kd import LogitDistillation  # isort: skip
from dcat.training.methods.feature import FeatureAlignment  # isort: skip
from dcat.training.methods.contrastive import ContrastiveAlignment  # isort: skip
from dcat.training.methods.dkd import DecoupledDistillation  # isort: skip
from dcat.training.methods.rkd import RelationalDistillation  # isort: skip
from dcat.training.methods.similarity import SimilarityPreserving  # isort: skip
from dcat.training.methods.virtual import VirtualSamples  # isort: skip
from dcat.training.methods.pseudo_label import PseudoLabels  # isort: skip

__all__ = [
    "ALIASES",
    "METHODS",
    "SOURCE_INPUTS",
    "ContrastiveAlignment",
    "CrossAttentionTransfer",
    "DecoupledDistillation",
    "FeatureAlignment",
    "LogitDistillation",
    "MethodVariant",
    "PseudoLabels",
    "RelationalDistillation",
    "SimilarityPreserving",
    "TransferBatch",
    "TransferMethod",
    "VirtualSamples",
    "get_method",
    "list_methods",
    "method_names",
    "register_method",
    "resolve_method",
]
