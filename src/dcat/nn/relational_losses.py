"""Relational distillation losses: the target matches how the source relates the samples of a
batch to each other, not the source's features themselves, so the two widths may differ.

Like :mod:`dcat.nn.peer_losses`, every loss takes ``(source, target)`` in that order and detaches
the source, so gradients reach only the target. The losses are computed in float32.

This module imports nothing but torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dcat.errors import DcatError

__all__ = ["rkd_angle_loss", "rkd_distance_loss", "rkd_loss", "similarity_preserving_loss"]

# Floor of a squared distance before its square root: the root's gradient at 0 is infinite, and
# two samples of a batch may have the same embedding. It is the reference code's floor.
_SQUARED_DISTANCE_FLOOR = 1e-12


def _check_batch(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        raise DcatError(f"{name_a} and {name_b} must be tensors, got {type(a)} and {type(b)}")
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise DcatError(
            f"{name_a} and {name_b} must be (B, Ds) and (B, Dt) with the same B, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def _check_weight(name: str, value: float) -> None:
    if not value >= 0:
        raise DcatError(f"{name} must be ≥ 0, got {value}")


def _zero(target: Tensor) -> Tensor:
    # a zero that still depends on the target, so backward() runs on a batch with no tuples
    return target.float().sum() * 0.0


def rkd_distance_loss(source_emb: Tensor, target_emb: Tensor) -> Tensor:
    """RKD's distance term (Park et al., Relational Knowledge Distillation, CVPR 2019).

    ``ψ_D(x_i, x_j) = ‖x_i − x_j‖ / μ`` with ``μ`` the mean distance over the batch's pairs
    ``i ≠ j``; the loss is the mean over those pairs of ``smooth_L1(ψ_D(target), ψ_D(source))``
    (Huber, ``β = 1``). Dividing by ``μ`` makes it invariant to a scale of either embedding.

    Args:
        source_emb: ``(B, Ds)`` of the frozen source (the teacher; detached here).
        target_emb: ``(B, Dt)`` of the trained target; ``Dt`` may differ from ``Ds``.

    Returns:
        Scalar; ``0`` (still differentiable in ``target_emb``) when ``B < 2``, since a batch
        of one has no pair: the last batch of an epoch may be that small.

    Raises:
        DcatError: Not ``(B, Ds)`` and ``(B, Dt)`` with the same ``B``.
    """
    _check_batch("source_emb", source_emb, "target_emb", target_emb)
    batch = target_emb.shape[0]
    if batch < 2:
        return _zero(target_emb)
    off = ~torch.eye(batch, dtype=torch.bool, device=target_emb.device)
    pairs = batch * (batch - 1)

    def normalised_distances(x: Tensor) -> Tensor:
        squared = (x[:, None, :] - x[None, :, :]).pow(2).sum(dim=2)
        d = squared.clamp_min(_SQUARED_DISTANCE_FLOOR).sqrt() * off
        return d / (d.sum() / pairs)

    t = normalised_distances(target_emb.float())
    s = normalised_distances(source_emb.detach().float())
    # the diagonal is 0 in both, so it adds nothing to the sum and is left out of the count
    return F.smooth_l1_loss(t, s, reduction="sum", beta=1.0) / pairs


def rkd_angle_loss(source_emb: Tensor, target_emb: Tensor) -> Tensor:
    """RKD's angle term (Park et al., Relational Knowledge Distillation, CVPR 2019).

    ``ψ_A(x_i, x_j, x_k) = ⟨e_ij, e_kj⟩`` with ``e_ij = (x_i − x_j) / ‖x_i − x_j‖``, the cosine of
    the angle at ``x_j``; the loss is the mean over the triplets of distinct samples of
    ``smooth_L1(ψ_A(target), ψ_A(source))`` (Huber, ``β = 1``). Invariant to a scale, a
    translation and a rotation of either embedding.

    Args:
        source_emb: ``(B, Ds)`` of the frozen source (the teacher; detached here).
        target_emb: ``(B, Dt)`` of the trained target; ``Dt`` may differ from ``Ds``.

    Returns:
        Scalar; ``0`` (still differentiable in ``target_emb``) when ``B < 3``, since such a
        batch has no triplet. Costs ``O(B³)`` memory (``B = 256``: 64 MiB).

    Raises:
        DcatError: Not ``(B, Ds)`` and ``(B, Dt)`` with the same ``B``.
    """
    _check_batch("source_emb", source_emb, "target_emb", target_emb)
    batch = target_emb.shape[0]
    if batch < 3:
        return _zero(target_emb)
    eye = torch.eye(batch, dtype=torch.bool, device=target_emb.device)
    # distinct[j, i, k]: i ≠ j, k ≠ j and i ≠ k
    distinct = ~(eye[:, :, None] | eye[:, None, :] | eye[None, :, :])
    triplets = batch * (batch - 1) * (batch - 2)

    def cosines(x: Tensor) -> Tensor:  # (B, B, B): [j, i, k] = ⟨e_ij, e_kj⟩
        e = F.normalize(x[None, :, :] - x[:, None, :], dim=2)  # e[j, i] = e_ij
        return torch.bmm(e, e.transpose(1, 2))

    t = cosines(target_emb.float())
    s = cosines(source_emb.detach().float())
    terms = F.smooth_l1_loss(t, s, reduction="none", beta=1.0)
    return (terms * distinct).sum() / triplets


def rkd_loss(
    source_emb: Tensor,
    target_emb: Tensor,
    *,
    distance_weight: float = 1.0,
    angle_weight: float = 2.0,
) -> Tensor:
    """Relational Knowledge Distillation (Park et al., CVPR 2019).

    ``distance_weight · L_D + angle_weight · L_A`` with :func:`rkd_distance_loss` and
    :func:`rkd_angle_loss` (the paper's ``λ_D = 1``, ``λ_A = 2``). The means run over distinct
    pairs and triplets, as the paper's sets ``χ²`` and ``χ³`` of distinct samples define them.
    A term of weight 0 is not computed.

    Args:
        source_emb: ``(B, Ds)`` of the frozen source (the teacher; detached here).
        target_emb: ``(B, Dt)`` of the trained target; ``Dt`` may differ from ``Ds``.
        distance_weight: ``λ_D ≥ 0``.
        angle_weight: ``λ_A ≥ 0``.

    Returns:
        Scalar. A term whose batch has no tuple (``B < 2`` for distances, ``B < 3`` for
        angles) is 0.

    Raises:
        DcatError: Bad shapes (see :func:`rkd_distance_loss`) or a negative weight.
    """
    _check_batch("source_emb", source_emb, "target_emb", target_emb)
    _check_weight("distance_weight", distance_weight)
    _check_weight("angle_weight", angle_weight)
    value = _zero(target_emb)
    if distance_weight:
        value = value + distance_weight * rkd_distance_loss(source_emb, target_emb)
    if angle_weight:
        value = value + angle_weight * rkd_angle_loss(source_emb, target_emb)
    return value


def similarity_preserving_loss(source_emb: Tensor, target_emb: Tensor) -> Tensor:
    """Similarity-preserving distillation (Tung & Mori, ICCV 2019).

    ``G = F Fᵀ`` (``B × B``) of each embedding, each row L2-normalised to ``G̃``; the loss is
    ``‖G̃_target − G̃_source‖_F² / B²``. ``G̃`` is unchanged by a scale of ``F`` and by a rotation
    of its features, not by rescaling one sample (that scales its column of ``G`` too).

    Args:
        source_emb: ``(B, Ds)`` of the frozen source (the teacher; detached here).
        target_emb: ``(B, Dt)`` of the trained target; ``Dt`` may differ from ``Ds``.

    Returns:
        Scalar.

    Raises:
        DcatError: Not ``(B, Ds)`` and ``(B, Dt)`` with the same ``B``, or ``B = 0``.
    """
    _check_batch("source_emb", source_emb, "target_emb", target_emb)
    batch = target_emb.shape[0]
    if batch == 0:
        raise DcatError(
            f"source_emb and target_emb must hold at least one sample, got "
            f"{tuple(source_emb.shape)} and {tuple(target_emb.shape)}"
        )

    def similarities(x: Tensor) -> Tensor:
        return F.normalize(x @ x.T, dim=1)

    t = similarities(target_emb.float())
    s = similarities(source_emb.detach().float())
    return (t - s).pow(2).sum() / batch**2
