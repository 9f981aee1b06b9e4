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
from dcat.nn.labels import fill_unlabelled

__all__ = ["check_labels", "contrastive_loss", "dkd_loss", "feature_loss", "logit_kd_loss"]


def _check_pair(name_a: str, a: Tensor, name_b: str, b: Tensor, shape: str) -> None:
    if a.shape != b.shape or a.ndim != 2:
        raise DcatError(
            f"{name_a} and {name_b} must both be {shape}, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_labels(labels: object, logits: Tensor, name: str = "source_logits") -> None:
    """Raise a :class:`DcatError` unless ``labels`` are ``(B,)`` integer class indices for
    ``logits`` ``(B, C)`` (called ``name`` in the message)."""
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else None
        raise DcatError(
            f"labels must have shape ({logits.shape[0]},) to match {name} "
            f"{tuple(logits.shape)}, got {shape}"
        )
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise DcatError(f"labels must be integer class indices, got dtype {labels.dtype}")


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


def dkd_loss(
    source_logits: Tensor,
    target_logits: Tensor,
    labels: Tensor,
    *,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> Tensor:
    """Decoupled Knowledge Distillation (Zhao et al., CVPR 2022): ``(α·TCKD + β·NCKD)·T²``.

    With ``p = softmax(z/T)`` of the source (teacher) and ``q`` of the target (student), and
    ``t`` the labelled class of a sample (the source's predicted class for an unlabelled one):

    * TCKD is ``KL(b_source ‖ b_target)`` over the binary distribution
      ``b = (p_t, 1 − p_t)``: how much mass the target class gets;
    * NCKD is ``KL(p̂_source ‖ p̂_target)`` over the non-target classes,
      ``p̂_k = softmax_{k ≠ t}(z_k/T)``: the target class is masked out before the softmax, so
      its logit has no effect on NCKD.

    Both are averaged over the batch. The authors' linear warm-up of the loss weight over the
    first epochs is left to the caller.

    Args:
        source_logits: ``(B, K)`` of the frozen source (the teacher; detached here).
        target_logits: ``(B, K)`` of the trained target (the student).
        labels: ``(B,)`` integer class indices in ``[0, K)``, or
            :data:`~dcat.nn.labels.UNLABELLED`; checked against ``K`` on the CPU only (on a GPU
            the check would cost a host sync).
        alpha: Weight ``α ≥ 0`` of TCKD.
        beta: Weight ``β ≥ 0`` of NCKD (the paper's default 8).
        temperature: Softening temperature ``T > 0``.

    Returns:
        Scalar, the batch mean.

    Raises:
        DcatError: Logits not both ``(B, K)`` with ``K ≥ 2``, labels not ``(B,)`` integers (or out
            of range), a negative weight or a temperature that is not positive.
    """
    _check_pair("source_logits", source_logits, "target_logits", target_logits, "(B, K)")
    if source_logits.shape[1] < 2:
        raise DcatError(
            f"source_logits and target_logits need K ≥ 2 classes for DKD, got "
            f"{tuple(source_logits.shape)}"
        )
    check_labels(labels, source_logits)
    classes = source_logits.shape[1]
    labels = fill_unlabelled(labels, source_logits)
    if not labels.is_cuda and labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise DcatError(
                f"labels must be class indices in [0, {classes}) for source_logits "
                f"{tuple(source_logits.shape)}, got values from {low} to {high}"
            )
    for name, weight in (("alpha", alpha), ("beta", beta)):
        if not weight >= 0:
            raise DcatError(f"{name} must be ≥ 0, got {weight}")
    _check_temperature(temperature)
    is_target = F.one_hot(labels.long(), classes).bool()
    log_q = F.log_softmax(target_logits.float() / temperature, dim=1)
    log_p = F.log_softmax(source_logits.detach().float() / temperature, dim=1)

    def binary(log_probs: Tensor) -> Tensor:  # (B, 2): log p_t, log (1 − p_t)
        own = log_probs.masked_fill(~is_target, float("-inf")).logsumexp(dim=1)
        rest = log_probs.masked_fill(is_target, float("-inf")).logsumexp(dim=1)
        return torch.stack([own, rest], dim=1)

    def kl(log_p: Tensor, log_q: Tensor) -> Tensor:
        return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()

    tckd = kl(binary(log_p), binary(log_q))
    # the masked entry is −inf in both: zeroed before the difference, it adds 0 (and its
    # gradient 0) instead of NaN
    nc_q = F.log_softmax(log_q.masked_fill(is_target, float("-inf")), dim=1)
    nc_p = F.log_softmax(log_p.masked_fill(is_target, float("-inf")), dim=1)
    nckd = kl(nc_p.masked_fill(is_target, 0.0), nc_q.masked_fill(is_target, 0.0))
    return (alpha * tckd + beta * nckd) * temperature**2
