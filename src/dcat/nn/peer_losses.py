"""The peers' transfer losses, the baselines D-CAT is compared with (docs/design.md, "Baselines").

Every loss takes ``(source, target)`` in that order, like
:func:`~dcat.nn.losses.cross_attention_loss`: the frozen source's tensor first, the trained
target's second. Source tensors are detached, so gradients reach only the target (and the
projections a method trains).

This module imports nothing but torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dcat.errors import DcatError

__all__ = ["contrastive_loss", "feature_loss", "logit_kd_loss"]


def _check_pair(name_a: str, a: Tensor, name_b: str, b: Tensor, shape: str) -> None:
    if a.shape != b.shape or a.ndim != 2:
        raise DcatError(
            f"{name_a} and {name_b} must both be {shape}, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise DcatError(f"temperature must be positive, got {temperature}")


def logit_kd_loss(source_logits: Tensor, target_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """Soft-target distillation (Hinton et al., 2015): ``T² · KL(p_T(source) ‖ p_T(target))``.

    Args:
        source_logits: ``(B, C)`` of the frozen source (the teacher; detached here).
        target_logits: ``(B, C)`` of the trained target (the student).
        temperature: Softening temperature ``T > 0``; ``T²`` keeps the gradient scale comparable.

    Returns:
        Scalar, the batch mean.
    """
    _check_pair("source_logits", source_logits, "target_logits", target_logits, "(B, C)")
    _check_temperature(temperature)
    log_target = F.log_softmax(target_logits.float() / temperature, dim=1)
    log_source = F.log_softmax(source_logits.detach().float() / temperature, dim=1)
    kl = F.kl_div(log_target, log_source, reduction="batchmean", log_target=True)
    return kl * temperature**2


def feature_loss(source_embedding: Tensor, target_projection: Tensor) -> Tensor:
    """Feature alignment (a FitNets-style hint, Romero et al., 2015): MSE to the source embedding.

    Args:
        source_embedding: ``(B, D)``, the frozen source's pooled embedding (detached here).
        target_projection: ``(B, D)``, the target's pooled embedding through a learned projection.

    Returns:
        Scalar, the mean over batch and features.
    """
    if source_embedding.shape != target_projection.shape:
        raise DcatError(
            f"source_embedding and target_projection must have the same shape, got "
            f"{tuple(source_embedding.shape)} and {tuple(target_projection.shape)}"
        )
    return F.mse_loss(target_projection.float(), source_embedding.detach().float())


def contrastive_loss(
    source_projection: Tensor, target_projection: Tensor, temperature: float = 0.1
) -> Tensor:
    """Symmetric InfoNCE between paired samples' projections (CLIP / COCOA style).

    The two modalities of one sample are the positive pair; the other samples of the batch are
    the negatives (Radford et al., 2021; Deldari et al., 2022). The loss is symmetric in its two
    arguments.

    Args:
        source_projection: ``(B, D)`` projection of the frozen source's pooled embedding (the
            projection head is trained; the source network is not).
        target_projection: ``(B, D)`` projection of the target's pooled embedding.
        temperature: ``τ > 0``.

    Returns:
        Scalar, the mean of the two directions' cross-entropies.
    """
    _check_pair(
        "source_projection", source_projection, "target_projection", target_projection, "(B, D)"
    )
    _check_temperature(temperature)
    a = F.normalize(target_projection.float(), dim=1)
    b = F.normalize(source_projection.float(), dim=1)
    logits = a @ b.T / temperature
    targets = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
