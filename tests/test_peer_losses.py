"""The peers' losses take (source, target) like cross_attention_loss; the old names still work,
with their old argument order and a deprecation warning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dcat.nn import losses
from dcat.nn.peer_losses import contrastive_loss, feature_loss, logit_kd_loss


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(6, 5), torch.randn(6, 5)


def test_logit_kd_loss_is_hinton_kl_source_first(pair) -> None:
    source, target = pair
    p = F.softmax(source / 2.0, 1)
    expected = (p * (p.log() - F.log_softmax(target / 2.0, 1))).sum(1).mean() * 4.0
    torch.testing.assert_close(logit_kd_loss(source, target, 2.0), expected)
    assert logit_kd_loss(source, source, 2.0).abs() < 1e-6  # matching the source costs nothing


def test_feature_loss_regresses_the_source(pair) -> None:
    source, target = pair
    torch.testing.assert_close(feature_loss(source, target), ((source - target) ** 2).mean())
    target = target.requires_grad_()
    feature_loss(source.requires_grad_(), target).backward()
    assert source.grad is None and target.grad is not None  # the source is detached


def test_contrastive_loss_is_symmetric_infonce(pair) -> None:
    source, target = pair
    a, b = F.normalize(target, dim=1), F.normalize(source, dim=1)
    sim = a @ b.T / 0.3
    labels = torch.arange(6)
    expected = (F.cross_entropy(sim, labels) + F.cross_entropy(sim.T, labels)) / 2
    torch.testing.assert_close(contrastive_loss(source, target, 0.3), expected)
    torch.testing.assert_close(contrastive_loss(target, source, 0.3), expected)


@pytest.mark.parametrize(
    ("old", "new", "kwargs"),
    [
        ("logit_distillation_loss", logit_kd_loss, {"temperature": 3.0}),
        ("feature_alignment_loss", feature_loss, {}),
        ("contrastive_alignment_loss", contrastive_loss, {"temperature": 0.2}),
    ],
)
def test_old_names_warn_and_keep_their_argument_order(pair, old, new, kwargs) -> None:
    source, target = pair
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated.*\(source, target\)"):
        value = getattr(losses, old)(target, source, **kwargs)
    torch.testing.assert_close(value, new(source, target, **kwargs))


def test_errors_name_the_arguments() -> None:
    with pytest.raises(ValueError, match=r"source_logits and target_logits must both be \(B, C\)"):
        logit_kd_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="source_embedding and target_projection must have"):
        feature_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0)
