"""Class labels, and the samples that have none.

A training sample may be *unlabelled*: a paired recording whose class nobody wrote down. Its
label is :data:`UNLABELLED` (``-1``). It reaches the transfer terms that can learn from the
source alone (docs/design.md, "Unlabelled recordings") and nothing that reads the class: the
cross-entropy, MCMA's ``correct`` rule, class counts and metrics.

This module imports nothing but torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["UNLABELLED", "fill_unlabelled", "labelled_cross_entropy"]

UNLABELLED = -1
"""The label of a sample without one (never a class index)."""


def labelled_cross_entropy(
    logits: Tensor, labels: Tensor, *, label_smoothing: float = 0.0
) -> Tensor:
    """The mean cross-entropy over the labelled samples of a batch; 0 when it has none.

    With every sample labelled this is :func:`torch.nn.functional.cross_entropy` exactly (bit
    for bit), so fully labelled training is unchanged.

    Args:
        logits: ``(B, C)``.
        labels: ``(B,)`` class indices, :data:`UNLABELLED` where a sample has none.
        label_smoothing: As in :func:`torch.nn.functional.cross_entropy`.

    Returns:
        A scalar; with no labelled sample, 0 with zero gradients (no NaN).
    """
    ce = F.cross_entropy(logits, labels, ignore_index=UNLABELLED, label_smoothing=label_smoothing)
    # a mask, not a branch: no host sync on a GPU; where() keeps 0/0's NaN out of the gradient
    return torch.where((labels != UNLABELLED).any(), ce, ce.new_zeros(()))


def fill_unlabelled(labels: Tensor, source_logits: Tensor) -> Tensor:
    """``labels`` with each unlabelled sample given the source's predicted class.

    For a method that reads a class per sample (DKD's target class) on samples without one.

    Args:
        labels: ``(B,)`` class indices or :data:`UNLABELLED`.
        source_logits: ``(B, C)`` of the frozen source.

    Returns:
        ``(B,)`` class indices.
    """
    return torch.where(labels == UNLABELLED, source_logits.detach().argmax(dim=1), labels)
