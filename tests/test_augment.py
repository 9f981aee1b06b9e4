"""Inertial augmentations: rotation, scaling, jitter and time warp, on normalised windows."""

from __future__ import annotations

import pytest
import torch

from dcat.data.augment import InertialAugment, random_rotations, time_warp
from dcat.errors import DcatError
from dcat.nn.encoders import create_encoder
from dcat.nn.model import ModalityNet
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

SHIFT = torch.tensor([0.1, -0.2, 0.9, 5.0, -3.0, 1.0])
SCALE = torch.tensor([0.5, 0.4, 0.3, 50.0, 40.0, 60.0])


def _raw(x: torch.Tensor) -> torch.Tensor:
    return x * SCALE.view(1, -1, 1) + SHIFT.view(1, -1, 1)


def test_rotations_are_proper_and_bounded() -> None:
    torch.manual_seed(0)
    r = random_rotations(200, 30.0)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(200, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(200))
    angles = torch.rad2deg(torch.arccos(((r.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1)))
    assert angles.max() <= 30.0 + 1e-3 and angles.max() > 25.0  # the whole range is used


def test_rotation_turns_each_raw_triad_and_keeps_its_norm() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 20)
    augment = InertialAugment(rotation=90.0, shift=SHIFT, scale=SCALE).train()
    y = augment(x)
    before, after = _raw(x).view(4, 2, 3, 20), _raw(y).view(4, 2, 3, 20)
    # a rotation keeps each raw 3-vector's length (not that of the normalised channels)
    torch.testing.assert_close(after.norm(dim=2), before.norm(dim=2), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(after, before, atol=1e-3)
    # one rotation per sample, the same for the accelerometer and the gyroscope triad
    r = torch.linalg.lstsq(before[:, 0].transpose(1, 2), after[:, 0].transpose(1, 2)).solution
    torch.testing.assert_close(
        after[:, 1], (before[:, 1].transpose(1, 2) @ r).transpose(1, 2), rtol=1e-3, atol=1e-3
    )


def test_scaling_multiplies_the_raw_signal_and_eval_mode_is_the_identity() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6, 10)
    augment = InertialAugment(scaling=0.2, shift=SHIFT, scale=SCALE)
    ratio = _raw(augment.train()(x)) / _raw(x)
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-4)
    assert not torch.allclose(ratio, torch.ones_like(ratio))
    assert augment.eval()(x) is x


def test_time_warp_is_monotone_resampling_with_fixed_ends() -> None:
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 50).expand(4, 2, 50)
    warped = time_warp(ramp, 0.5)
    assert torch.all(warped.diff(dim=2) >= -1e-6)  # a monotone time axis keeps a ramp rising
    torch.testing.assert_close(warped[..., [0, -1]], ramp[..., [0, -1]])
    assert not torch.allclose(warped, ramp, atol=1e-3)
    assert time_warp(ramp, 0.0) is ramp


def test_jitter_is_noise_in_normalised_units() -> None:
    torch.manual_seed(0)
    x = torch.zeros(64, 6, 100)
    noise = InertialAugment(jitter=0.1, shift=SHIFT, scale=SCALE).train()(x)
    assert abs(float(noise.std()) - 0.1) < 0.005 and abs(float(noise.mean())) < 0.005


def test_the_same_seed_gives_the_same_augmentation() -> None:
    x = torch.randn(3, 6, 30)
    augment = InertialAugment(rotation=30, scaling=0.1, jitter=0.05, time_warp=0.2).train()
    torch.manual_seed(5)
    first = augment(x)
    torch.manual_seed(5)
    torch.testing.assert_close(augment(x), first)


def test_bad_options_and_shapes_are_named() -> None:
    with pytest.raises(DcatError, match=r"augmentation jitter must be ≥ 0, got -0\.1"):
        InertialAugment(jitter=-0.1)
    with pytest.raises(DcatError, match="rotation is an angle in degrees ≤ 180, got 200"):
        InertialAugment(rotation=200)
    with pytest.raises(DcatError, match=r"needs channels in \(x, y, z\) triads, got 4 channels"):
        InertialAugment(rotation=10).train()(torch.randn(2, 4, 8))
    with pytest.raises(DcatError, match="statistics of 6 channels, the input has 3"):
        InertialAugment(jitter=0.1, shift=SHIFT, scale=SCALE).train()(torch.randn(2, 3, 8))


class _Seen(torch.nn.Module):
    """An augmentation that records what it was given and adds 1."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + 1


def _net(channels: int = 6) -> ModalityNet:
    return ModalityNet(create_encoder("imu", channels, widths=[8, 8, 8]), d_out=8, num_classes=3)


def test_tasks_augment_the_target_in_training_only_and_sources_see_clean_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 16)
    batch = {"inputs": {"imu": x, "other": x.clone()}, "label": torch.tensor([0, 1, 2, 0])}
    seen = _Seen()
    task = UnimodalTask(_net(), "imu", augment=seen).eval()
    plain = task.target.forward_all(x).logits
    torch.testing.assert_close(task(batch)["logits"], plain)  # eval: no augmentation
    assert seen.calls == 0
    task.train()
    task.target.eval()  # dropout and batch norm fixed, so only the input differs
    torch.testing.assert_close(task(batch)["logits"], task.target.forward_all(x + 1).logits)
    assert seen.calls == 1
    source = _net().eval()
    transfer = TransferTask(_net(), "imu", [SourceSpec("other", source, "other", "logit_kd")],
                            augment=seen)  # fmt: skip
    transfer.train()
    out = transfer(batch)
    expected = transfer.source_outputs(transfer.specs[0], batch)  # the source: clean input
    torch.testing.assert_close(expected.logits, source.forward_all(x).logits)
    assert seen.calls == 2 and torch.isfinite(out["loss"])
