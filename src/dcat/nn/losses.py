"""The D-CAT cross-attention loss, the MCMA mask, and helpers to reduce them.

The loss compares, per sample, the self-attention statistics ``M = Kᵀ V`` of a frozen *source*
network with those of a trainable *target* network (docs/design.md, "The loss")::

    M_a = K_aᵀ V_a,   M_b = K_bᵀ V_b                       (d × d, per sample)
    ℓ_i = ‖ M_b / ‖M_b‖_F − M_a / ‖M_a‖_F ‖_F              (0 ≤ ℓ_i ≤ 2)

Two numerically equivalent ways compute ``ℓ_i``:

* ``"materialize"`` forms both ``d × d`` matrices: ``O(B·(S_a+S_b)·d²)`` time, ``O(B·d²)`` memory.
* ``"gram"`` never forms them. With ``⟨K_aᵀV_a, K_bᵀV_b⟩_F = Σ (K_a K_bᵀ) ⊙ (V_a V_bᵀ)`` it costs
  ``O(B·(S_a²+S_a·S_b+S_b²)·d)``, far cheaper when the sequences are shorter than ``d``.

This module imports nothing but torch, so the loss drops into any training loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from dcat.errors import DcatError
from dcat.nn.labels import UNLABELLED
from dcat.nn.peer_losses import (
    _check_pair,
    check_labels,
    contrastive_loss,
    feature_loss,
    logit_kd_loss,
)

__all__ = [
    "DEFAULT_EPS",
    "choose_method",
    "contrastive_alignment_loss",
    "cross_attention_distance",
    "cross_attention_loss",
    "feature_alignment_loss",
    "global_masked_mean",
    "logit_distillation_loss",
    "mcma_mask",
    "reduce_masked",
    "select_samples",
    "source_square",
]

DEFAULT_EPS = 1e-8
"""Floor on ``‖M‖_F`` so an all-zero ``M`` normalises to zero instead of dividing by zero."""

Reduction = Literal["mean", "sum", "none"]
Method = Literal["auto", "materialize", "gram"]
_REDUCTIONS = ("mean", "sum", "none")
_METHODS = ("auto", "materialize", "gram")


def _check_kqv(name: str, kqv: object) -> tuple[Tensor, Tensor]:
    """Validate a ``(K, Q, V)`` tuple and return ``(K, V)``; ``Q`` may be ``None``."""
    if not isinstance(kqv, Sequence) or isinstance(kqv, (str, bytes)) or len(kqv) != 3:
        kind = type(kqv).__name__
        length = f" of length {len(kqv)}" if isinstance(kqv, Sequence) else ""
        raise DcatError(
            f"{name} must be a tuple (K, Q, V) as returned by SelfAttention, got {kind}{length}"
        )
    k, q, v = kqv
    for part, tensor in (("K", k), ("V", v)):
        if not isinstance(tensor, Tensor):
            raise DcatError(f"{name}: {part} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.ndim != 3:
            raise DcatError(
                f"{name}: {part} must have shape (B, S, d), got {tuple(tensor.shape)} "
                f"({tensor.ndim} dims)"
            )
    if k.shape != v.shape:
        raise DcatError(
            f"{name}: K and V must have the same shape (B, S, d), "
            f"got K {tuple(k.shape)} and V {tuple(v.shape)}"
        )
    if q is not None:
        if not isinstance(q, Tensor):
            raise DcatError(f"{name}: Q must be a torch.Tensor or None, got {type(q).__name__}")
        if q.shape != k.shape:
            raise DcatError(
                f"{name}: Q must have the shape of K {tuple(k.shape)}, got {tuple(q.shape)}"
            )
    if not (k.is_floating_point() and v.is_floating_point()):
        raise DcatError(f"{name}: K and V must be floating point, got {k.dtype} and {v.dtype}")
    return k, v


def _check_mask(mask: Tensor | None, batch: int) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise DcatError(
            f"mask must be a bool tensor of shape ({batch},), got {type(mask).__name__}"
        )
    if mask.dtype != torch.bool:
        raise DcatError(f"mask must have dtype torch.bool, got {mask.dtype}")
    if tuple(mask.shape) != (batch,):
        raise DcatError(
            f"mask must have shape ({batch},) (one flag per sample), got {tuple(mask.shape)}"
        )


def choose_method(s_a: int, s_b: int, d: int) -> Literal["materialize", "gram"]:
    """Pick the cheaper computation path from the shapes.

    Args:
        s_a: Source sequence length ``S_a``.
        s_b: Target sequence length ``S_b``.
        d: Attention width ``d``.

    Returns:
        ``"gram"`` when its multiply-adds ``2·d·(S_a² + S_a·S_b + S_b²)`` (the K and V Gram
        matrices of the three pairs) are fewer than the ``d²·(S_a + S_b)`` of forming both ``M``,
        else ``"materialize"``.
    """
    gram_cost = 2 * d * (s_a * s_a + s_a * s_b + s_b * s_b)
    materialize_cost = d * d * (s_a + s_b)
    return "gram" if gram_cost < materialize_cost else "materialize"


def _safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(max(x, 0))`` whose gradient is 0 (a valid subgradient of the norm) at 0, not inf."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), 0.0)


def _materialized_squared_distance(
    k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor, eps: float
) -> Tensor:
    m_a = torch.bmm(k_a.transpose(1, 2), v_a)  # (B, d, d)
    m_b = torch.bmm(k_b.transpose(1, 2), v_b)
    m_a = F.normalize(m_a.flatten(1), dim=1, eps=eps)
    m_b = F.normalize(m_b.flatten(1), dim=1, eps=eps)
    return (m_b - m_a).square().sum(dim=1)


def _distance_materialize(k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor, eps: float) -> Tensor:
    return _safe_sqrt(_materialized_squared_distance(k_a, v_a, k_b, v_b, eps))


def _gram_inner(k_x: Tensor, v_x: Tensor, k_y: Tensor, v_y: Tensor) -> Tensor:
    """``⟨K_xᵀV_x, K_yᵀV_y⟩_F`` per sample from the ``(S_x, S_y)`` Gram matrices; ``(B,)``."""
    return (torch.bmm(k_x, k_y.transpose(1, 2)) * torch.bmm(v_x, v_y.transpose(1, 2))).sum((1, 2))


class _GramStatistics(torch.autograd.Function):
    """``(⟨M_a, M_b⟩_F, ‖M_b‖²_F)`` per sample from Gram matrices, with an analytic backward.

    With ``P = K_b K_aᵀ``, ``Q = V_b V_aᵀ``, ``R = K_b K_bᵀ``, ``T = V_b V_bᵀ``:
    ``∂⟨·⟩/∂K_b = Q K_a``, ``∂‖M_b‖²/∂K_b = 2 T K_b`` (and symmetrically for ``V_b``): four
    batched products where autograd would run six. The source (``K_a``, ``V_a``) gets no
    gradient. Under ``create_graph=True`` the backward recomputes ``P, Q, R, T`` from the
    inputs with differentiable operations, so second derivatives stay exact.
    """

    @staticmethod
    def _grams(k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor) -> tuple[Tensor, ...]:
        return (
            torch.bmm(k_b, k_a.transpose(1, 2)),
            torch.bmm(v_b, v_a.transpose(1, 2)),
            torch.bmm(k_b, k_b.transpose(1, 2)),
            torch.bmm(v_b, v_b.transpose(1, 2)),
        )

    @staticmethod
    def forward(ctx, k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor) -> tuple[Tensor, Tensor]:
        p, q, r, t = _GramStatistics._grams(k_a, v_a, k_b, v_b)
        ctx.save_for_backward(k_a, v_a, k_b, v_b, p, q, r, t)
        return (p * q).sum((1, 2)), (r * t).sum((1, 2))

    @staticmethod
    def backward(ctx, g_cross: Tensor, g_square: Tensor) -> tuple[Tensor | None, ...]:
        k_a, v_a, k_b, v_b, p, q, r, t = ctx.saved_tensors
        if torch.is_grad_enabled():
            p, q, r, t = _GramStatistics._grams(k_a, v_a, k_b, v_b)
        g_c = g_cross[:, None, None]
        g_s = 2.0 * g_square[:, None, None]
        grad_k = torch.baddbmm(torch.bmm(g_c * q, k_a), g_s * t, k_b)
        grad_v = torch.baddbmm(torch.bmm(g_c * p, v_a), g_s * r, v_b)
        return None, None, grad_k, grad_v


@overload
def _gram_squared_distance(
    k_a: Tensor,
    v_a: Tensor,
    k_b: Tensor,
    v_b: Tensor,
    eps: float,
    *,
    conditioning: Literal[False] = False,
    sq_a: Tensor | None = None,
) -> Tensor: ...


@overload
def _gram_squared_distance(
    k_a: Tensor,
    v_a: Tensor,
    k_b: Tensor,
    v_b: Tensor,
    eps: float,
    *,
    conditioning: Literal[True],
    sq_a: Tensor | None = None,
) -> tuple[Tensor, Tensor]: ...


def _gram_squared_distance(
    k_a: Tensor,
    v_a: Tensor,
    k_b: Tensor,
    v_b: Tensor,
    eps: float,
    *,
    conditioning: bool = False,
    sq_a: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    # ℓ² = ‖M̂_b‖² + ‖M̂_a‖² − 2⟨M_a, M_b⟩/(n_a n_b) with n = max(‖M‖, eps), the same
    # normalisation as F.normalize on the materialised path. The terms are written so that
    # identical inputs give bitwise-identical terms and hence exactly 0. A frozen source's
    # ‖M_a‖² is a constant of the sample: given (a cache's, :func:`source_square`), it is not
    # recomputed (with K and V as long as the target's, a third of the Gram products)
    if sq_a is None:
        sq_a = source_square(k_a, v_a)
    cross, sq_b = _GramStatistics.apply(k_a, v_a, k_b, v_b)
    # clamp before sqrt: below eps² the norm is the constant eps, so no gradient flows via sqrt(0)
    n_a = torch.sqrt(sq_a.clamp_min(eps * eps))
    n_b = torch.sqrt(sq_b.clamp_min(eps * eps))
    squared = sq_b / (n_b * n_b) + sq_a / (n_a * n_a) - 2.0 * (cross / (n_a * n_b))
    if not conditioning:
        return squared
    # ‖KᵀV‖² / (‖K‖²‖V‖²) ∈ [0, 1]: the Gram sums' rounding error relative to ‖KᵀV‖² is at most
    # the unit roundoff divided by this (Cauchy–Schwarz bounds Σ|k_i·k_j||v_i·v_j| by ‖K‖²‖V‖²)
    with torch.no_grad():
        scale_a = _squared_norm(k_a) * _squared_norm(v_a)
        scale_b = _squared_norm(k_b) * _squared_norm(v_b)
        ratio = torch.minimum(
            sq_a.detach() / scale_a.clamp_min(torch.finfo(scale_a.dtype).tiny),
            sq_b.detach() / scale_b.clamp_min(torch.finfo(scale_b.dtype).tiny),
        )
    return squared, ratio


def _squared_norm(x: Tensor) -> Tensor:
    """``‖x_i‖²_F`` per sample of ``(B, S, d)``; ``(B,)`` (no ``(B, S, d)`` temporary)."""
    return torch.linalg.vector_norm(x, dim=(1, 2)).square()


_REFINE_BELOW = {torch.float64: 1e-4}
"""Gram-path samples with ``ℓ`` below this are recomputed more precisely (``_distance_gram``)."""
_REFINE_BELOW_DEFAULT = 0.1
_CONDITION_BELOW = {torch.float64: 1e-6}
"""Gram-path samples whose ``‖KᵀV‖²/(‖K‖²‖V‖²)`` is below this are recomputed too."""
_CONDITION_BELOW_DEFAULT = 5e-3


def source_square(k_a: Tensor, v_a: Tensor) -> Tensor:
    """``‖K_aᵀV_a‖²_F`` per sample, as the Gram path computes it; ``(B,)``.

    Args:
        k_a: ``K`` of a source ``(B, S, d)``, in the dtype the loss computes in (at least
            float32: :func:`cross_attention_distance` promotes to it).
        v_a: ``V`` ``(B, S, d)``, same dtype.

    Returns:
        ``(B,)``: what ``cross_attention_distance(..., source_square=...)`` takes in place of
        recomputing it (a source cache keeps it per sample).
    """
    return _gram_inner(k_a, v_a, k_a, v_a)


def _distance_gram(
    k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor, eps: float, sq_a: Tensor | None = None
) -> Tensor:
    return _safe_sqrt(_gram_squared_refined(k_a, v_a, k_b, v_b, eps, sq_a))


def _gram_squared_refined(
    k_a: Tensor, v_a: Tensor, k_b: Tensor, v_b: Tensor, eps: float, sq_a: Tensor | None = None
) -> Tensor:
    squared, ratio = _gram_squared_distance(k_a, v_a, k_b, v_b, eps, conditioning=True, sq_a=sq_a)
    # ℓ² = 2 − 2cos cancels: its absolute error is ~1e-7 in float32 (~2e-16 in float64), an
    # error of ~1e-7/ℓ in ℓ (3e-4 at ℓ = 1e-4). Near-aligned samples are redone: float32 ones in
    # float64 on the Gram path (within 1e-6 of the materialised path, still never forming d × d),
    # where the float64 rules apply in turn; float64 ones within 1e-4 of perfect alignment by
    # materialising those samples only. So are samples whose Gram sums cancel (K nearly
    # orthogonal to V, so ‖KᵀV‖ ≪ ‖K‖‖V‖): a float32 sample with ‖KᵀV‖²/(‖K‖²‖V‖²) of 2e-8 was
    # 4e-5 off in float64 Gram sums, and is materialised in float64 now.
    threshold = _REFINE_BELOW.get(squared.dtype, _REFINE_BELOW_DEFAULT)
    badly_conditioned = ratio < _CONDITION_BELOW.get(squared.dtype, _CONDITION_BELOW_DEFAULT)
    near = (squared.detach() < threshold**2) | badly_conditioned
    if squared.is_cuda and squared.dtype != torch.float64:
        # branch-free on a GPU: a host sync per step costs more than redoing the batch in fp64
        refined = _gram_squared_distance(
            k_a.double(), v_a.double(), k_b.double(), v_b.double(), eps
        )
        return torch.where(near, refined.to(squared.dtype), squared)
    if bool(near.any()):
        idx = near.nonzero(as_tuple=True)
        parts = (k_a[idx], v_a[idx], k_b[idx], v_b[idx])
        if squared.dtype == torch.float64:
            refined = _materialized_squared_distance(*parts, eps)
        else:
            k_a64, v_a64, k_b64, v_b64 = (p.double() for p in parts)
            refined = _gram_squared_refined(k_a64, v_a64, k_b64, v_b64, eps)
        squared = squared.index_put(idx, refined.to(squared.dtype))
    return squared


def cross_attention_distance(
    source_kqv: tuple[Tensor | None, ...] | Sequence[Tensor | None],
    target_kqv: tuple[Tensor | None, ...] | Sequence[Tensor | None],
    *,
    method: Method = "auto",
    eps: float = DEFAULT_EPS,
    source_square: Tensor | None = None,
) -> Tensor:
    """Per-sample D-CAT distance ``ℓ_i`` between source and target attention statistics.

    Args:
        source_kqv: ``(K_a, Q_a, V_a)`` of the frozen source, each ``(B, S_a, d)``; ``Q_a`` is
            unused and may be ``None``. Detached: no gradient ever reaches the source.
        target_kqv: ``(K_b, Q_b, V_b)`` of the trained target, each ``(B, S_b, d)``.
        method: ``"materialize"``, ``"gram"`` or ``"auto"`` (:func:`choose_method`).
        eps: Floor on the Frobenius norm of ``M`` before normalising.
        source_square: ``(B,)`` ``‖K_aᵀV_a‖²_F`` of these source rows, from
            :func:`source_square` on ``K_a, V_a`` in the promoted dtype (a source cache keeps
            it): the Gram path then does not recompute it. Values and gradients are the same.
            Used only in the promoted dtype (float32 for float32 or float16 inputs).

    Returns:
        Tensor ``(B,)`` of distances in ``[0, 2]``, in the inputs' promoted dtype (at least
        float32; computed outside autocast so bf16/fp16 inputs do not lose the cancellation).

    Raises:
        DcatError: On a malformed tuple, wrong ranks, or mismatched batch size or ``d``.
    """
    k_a, v_a = _check_kqv("source_kqv", source_kqv)
    k_b, v_b = _check_kqv("target_kqv", target_kqv)
    if k_a.shape[0] != k_b.shape[0]:
        raise DcatError(
            f"source_kqv and target_kqv must have the same batch size, got {k_a.shape[0]} "
            f"(source {tuple(k_a.shape)}) and {k_b.shape[0]} (target {tuple(k_b.shape)})"
        )
    if k_a.shape[2] != k_b.shape[2]:
        raise DcatError(
            f"source_kqv and target_kqv must have the same attention width d (d_out), got "
            f"{k_a.shape[2]} (source {tuple(k_a.shape)}) and {k_b.shape[2]} "
            f"(target {tuple(k_b.shape)})"
        )
    if method not in _METHODS:
        raise DcatError(f"method must be one of {_METHODS}, got {method!r}")
    if not eps > 0:
        raise DcatError(f"eps must be positive, got {eps}")
    if method == "auto":
        method = choose_method(k_a.shape[1], k_b.shape[1], k_a.shape[2])

    dtype = torch.promote_types(torch.promote_types(k_a.dtype, k_b.dtype), torch.float32)
    k_a, v_a = k_a.detach().to(dtype), v_a.detach().to(dtype)
    k_b, v_b = k_b.to(dtype), v_b.to(dtype)
    if source_square is not None and source_square.shape != (k_a.shape[0],):
        raise DcatError(
            f"source_square must have shape ({k_a.shape[0]},) (one value per source row), got "
            f"{tuple(source_square.shape)}"
        )
    with torch.autocast(device_type=k_b.device.type, enabled=False):
        if method == "gram":
            # computed in another dtype it would not be the same number: recomputed then
            given = source_square is not None and source_square.dtype == dtype
            sq_a = source_square.detach() if given and source_square is not None else None
            return _distance_gram(k_a, v_a, k_b, v_b, eps, sq_a)
        return _distance_materialize(k_a, v_a, k_b, v_b, eps)


def reduce_masked(
    values: Tensor, mask: Tensor | None = None, reduction: Reduction = "mean"
) -> Tensor:
    """Reduce per-sample values over the samples selected by ``mask``.

    Args:
        values: Per-sample values ``(B,)``.
        mask: Bool ``(B,)``; ``None`` selects every sample.
        reduction: ``"mean"`` over the selected samples (exactly ``0.0`` when none is selected,
            still attached to the graph), ``"sum"`` over them, or ``"none"``: ``(B,)`` with the
            unselected entries set to 0.

    Returns:
        A scalar, or ``(B,)`` for ``"none"``.
    """
    if reduction not in _REDUCTIONS:
        raise DcatError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    _check_mask(mask, values.shape[0])
    if mask is not None:
        # where() rather than multiply, so an unselected non-finite value cannot poison the sum
        values = torch.where(
            mask, values, torch.zeros((), dtype=values.dtype, device=values.device)
        )
    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    if mask is None:
        return total / max(values.shape[0], 1)  # a Python divisor: no device tensor, no sync
    return total / mask.sum().to(values.dtype).clamp_min(1.0)


def cross_attention_loss(
    source_kqv: tuple[Tensor | None, ...] | Sequence[Tensor | None],
    target_kqv: tuple[Tensor | None, ...] | Sequence[Tensor | None],
    mask: Tensor | None = None,
    *,
    reduction: Reduction = "mean",
    method: Method = "auto",
    eps: float = DEFAULT_EPS,
) -> Tensor:
    """The D-CAT cross-attention loss ``L_CA`` (Daher et al., ICRA 2026, Eq. 7 and 17).

    The **first** argument is the *source* (frozen teacher), the second the *target* (trained).
    This is the positional form of the authors' package: ``cross_attention_loss((k_a, q_a, v_a),
    (k_b, q_b, v_b), mask)``. No gradient reaches the source tensors.

    Args:
        source_kqv: ``(K_a, Q_a, V_a)``, each ``(B, S_a, d)``; ``Q_a`` may be ``None``.
        target_kqv: ``(K_b, Q_b, V_b)``, each ``(B, S_b, d)``; ``S_b`` may differ from ``S_a``.
        mask: Bool ``(B,)``, true where the sample counts (MCMA: where the source classifies it
            correctly, see :func:`mcma_mask`). ``None``: every sample counts.
        reduction: ``"mean"`` over the masked samples (``0.0`` when none, still in the graph),
            ``"sum"``, or ``"none"`` for the ``(B,)`` per-sample losses (0 where unmasked).
        method: ``"materialize"`` (forms ``Kᵀ V``), ``"gram"`` (Gram matrices) or ``"auto"``.
        eps: Floor on ``‖Kᵀ V‖_F`` before normalising.

    Returns:
        A scalar tensor, or ``(B,)`` for ``reduction="none"``; values per sample in ``[0, 2]``.

    Raises:
        DcatError: Naming the argument and shapes at fault.

    Example:
        >>> import torch
        >>> from dcat import cross_attention_loss
        >>> k_a, v_a = torch.randn(4, 30, 64), torch.randn(4, 30, 64)
        >>> k_b = torch.randn(4, 20, 64, requires_grad=True)
        >>> v_b = torch.randn(4, 20, 64, requires_grad=True)
        >>> loss = cross_attention_loss((k_a, None, v_a), (k_b, None, v_b))
        >>> loss.backward()
    """
    if reduction not in _REDUCTIONS:
        raise DcatError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if mask is None or reduction == "none" or mask.is_cuda:
        # (on a GPU, selecting rows would need a host sync; masking the values does not)
        distances = cross_attention_distance(source_kqv, target_kqv, method=method, eps=eps)
        return reduce_masked(distances, mask, reduction)
    # unmasked samples contribute neither value nor gradient: compute the masked ones only
    _check_mask(mask, _check_kqv("source_kqv", source_kqv)[0].shape[0])
    _check_kqv("target_kqv", target_kqv)
    distances = cross_attention_distance(
        select_samples(source_kqv, mask), select_samples(target_kqv, mask), method=method, eps=eps
    )
    return reduce_masked(distances, None, reduction)


def select_samples(kqv: Sequence[Tensor | None], mask: Tensor) -> tuple[Tensor | None, ...]:
    """The rows of a ``(K, Q, V)`` tuple where ``mask`` ``(B,)`` is true (``None`` stays)."""
    rows = mask.nonzero(as_tuple=True)[0]
    return tuple(None if t is None else t.index_select(0, rows.to(t.device)) for t in kqv)


def mcma_mask(source_logits: Tensor, labels: Tensor, *, confidence: float | None = None) -> Tensor:
    """Masked cross-modal alignment: which samples the source classifies correctly.

    Args:
        source_logits: ``(B, C)`` logits of the frozen source.
        labels: ``(B,)`` integer class labels.
        confidence: If given, also require the source's probability of the true class to be
            at least this (the ``confident`` rule; in ``(0, 1]``).

    Returns:
        Bool tensor ``(B,)``, true where ``argmax(source_logits) == labels`` (and, with
        ``confidence``, ``softmax(source_logits)[labels] ≥ confidence``). An unlabelled sample
        (label :data:`~dcat.nn.labels.UNLABELLED`) is never correct; with ``confidence`` it is
        kept where the source's top probability is ``≥ confidence``, the one test possible
        without a label.
    """
    if not isinstance(source_logits, Tensor) or source_logits.ndim != 2:
        shape = tuple(source_logits.shape) if isinstance(source_logits, Tensor) else None
        raise DcatError(f"source_logits must have shape (B, C), got {shape}")
    check_labels(labels, source_logits)
    logits = source_logits.detach()
    correct = logits.argmax(dim=1) == labels
    if confidence is None:
        return correct
    if not 0 < confidence <= 1:
        raise DcatError(f"confidence must be in (0, 1], got {confidence}")
    # a probability ≥ 0.5 is always the argmax; below it, correctness is still required
    probs = logits.float().softmax(dim=1)
    unlabelled = labels == UNLABELLED
    true_prob = probs.gather(1, labels.clamp_min(0).view(-1, 1)).squeeze(1)
    confident = (true_prob >= confidence) & correct
    return torch.where(unlabelled, probs.amax(dim=1) >= confidence, confident)


def global_masked_mean(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """Masked mean over the *global* batch when running under ``torch.distributed``.

    Each rank returns ``world_size · Σ_local ℓ / N_global`` with ``N_global`` the masked count
    summed over ranks. Data-parallel training averages gradients over ranks, so the effective
    gradient is that of ``Σ_global ℓ / N_global``, the mean over the masked samples of the whole
    batch, and not the mean of per-rank means (which would overweight ranks with few masked
    samples). Outside a process group this is :func:`reduce_masked` with ``"mean"``.

    Args:
        values: Per-sample values ``(B,)`` of this rank.
        mask: Bool ``(B,)`` or ``None`` (every sample).

    Returns:
        A scalar; exactly 0 (in the graph) when no rank has a masked sample.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return reduce_masked(values, mask, "mean")
    total = reduce_masked(values, mask, "sum")
    if mask is None:
        count = torch.full((), float(values.shape[0]), dtype=values.dtype, device=values.device)
    else:
        count = mask.sum().to(values.dtype)
    dist.all_reduce(count)
    return total * dist.get_world_size() / count.clamp_min(1.0)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"dcat.nn.losses.{old} is deprecated and will be removed in the next release; use "
        f"dcat.nn.peer_losses.{new}, which takes (source, target) like cross_attention_loss",
        DeprecationWarning,
        stacklevel=3,
    )


def logit_distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0
) -> Tensor:
    """Deprecated: :func:`dcat.nn.peer_losses.logit_kd_loss` with the arguments swapped.

    Args:
        student_logits: ``(B, C)`` of the trained target.
        teacher_logits: ``(B, C)`` of the frozen source.
        temperature: ``T > 0``.
    """
    _deprecated("logit_distillation_loss", "logit_kd_loss(source_logits, target_logits)")
    # checked under the old names first, so old callers keep their error messages
    _check_pair("student_logits", student_logits, "teacher_logits", teacher_logits, "(B, C)")
    return logit_kd_loss(teacher_logits, student_logits, temperature)


def feature_alignment_loss(projected_student: Tensor, teacher_embedding: Tensor) -> Tensor:
    """Deprecated: :func:`dcat.nn.peer_losses.feature_loss` with the arguments swapped.

    Args:
        projected_student: ``(B, D)`` projection of the target's embedding.
        teacher_embedding: ``(B, D)`` embedding of the frozen source.
    """
    _deprecated("feature_alignment_loss", "feature_loss(source_embedding, target_projection)")
    if projected_student.shape != teacher_embedding.shape:
        raise DcatError(
            f"projected_student and teacher_embedding must have the same shape, got "
            f"{tuple(projected_student.shape)} and {tuple(teacher_embedding.shape)}"
        )
    return feature_loss(teacher_embedding, projected_student)


def contrastive_alignment_loss(
    target_projection: Tensor, source_projection: Tensor, temperature: float = 0.1
) -> Tensor:
    """Deprecated: :func:`dcat.nn.peer_losses.contrastive_loss` with the arguments swapped.

    Args:
        target_projection: ``(B, D)`` projection of the target's embedding.
        source_projection: ``(B, D)`` projection of the frozen source's embedding.
        temperature: ``τ > 0``.
    """
    _deprecated(
        "contrastive_alignment_loss", "contrastive_loss(source_projection, target_projection)"
    )
    _check_pair(
        "target_projection", target_projection, "source_projection", source_projection, "(B, D)"
    )
    return contrastive_loss(source_projection, target_projection, temperature)
