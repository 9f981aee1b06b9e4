"""Shapes and errors of SelfAttention, ModalityNet and the registered encoders."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcat import ModalityNet, SelfAttention, create_encoder, list_encoders, register_encoder
from dcat.nn.encoders import IMUEncoder, SequenceEncoder


@pytest.mark.parametrize(
    ("batch", "seq", "d_model", "d_out", "heads"), [(2, 7, 16, 32, 1), (3, 1, 8, 12, 3)]
)
def test_self_attention_shapes_and_value(batch, seq, d_model, d_out, heads) -> None:
    attn = SelfAttention(d_model, d_out, num_heads=heads).eval()
    x = torch.randn(batch, seq, d_model)
    out, (k, q, v) = attn(x)
    assert out.shape == k.shape == q.shape == v.shape == (batch, seq, d_out)
    torch.testing.assert_close(k, attn.key(x))
    if heads == 1:
        weights = torch.softmax(q @ k.transpose(1, 2) / d_out**0.5, dim=-1)
        torch.testing.assert_close(out, weights @ v, rtol=1e-5, atol=1e-5)


def test_self_attention_default_width_is_papers_512() -> None:
    _, (k, _, _) = SelfAttention(10)(torch.randn(1, 4, 10))
    assert k.shape[-1] == 512


def test_self_attention_errors() -> None:
    with pytest.raises(
        ValueError, match=r"num_heads \(3\) must be positive and divide d_out \(16\)"
    ):
        SelfAttention(8, 16, num_heads=3)
    with pytest.raises(
        ValueError, match=r"embeddings must have shape \(B, S, 8\), got \(2, 5, 9\)"
    ):
        SelfAttention(8, 16)(torch.randn(2, 5, 9))


@pytest.mark.parametrize("length", [4, 50, 128, 301])
def test_imu_encoder_shapes(length: int) -> None:
    enc = create_encoder("imu", 6)
    assert isinstance(enc, IMUEncoder)
    out = enc(torch.randn(3, 6, length))
    assert out.shape == (3, length // 4, enc.d_model) == (3, enc.output_length(length), 128)


def test_imu_encoder_configurable() -> None:
    enc = create_encoder("imu", 3, widths=(8, 16, 24), kernel_sizes=(3, 3, 1), pool=3)
    assert enc(torch.randn(2, 3, 90)).shape == (2, 10, 24)
    with pytest.raises(ValueError, match="needs at least 9 time steps, got T=8"):
        enc(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3, T\), got \(2, 6, 90\)"):
        enc(torch.randn(2, 6, 90))
    with pytest.raises(ValueError, match="must each have 3 entries"):
        create_encoder("imu", 3, widths=(8, 16))


@pytest.mark.parametrize(("length", "downsample"), [(1, 1), (41, 2), (125, 4), (64, 8)])
def test_sequence_encoder_shapes(length: int, downsample: int) -> None:
    enc = create_encoder("sequence", 60, d_model=32, depth=3, downsample=downsample)
    assert isinstance(enc, SequenceEncoder)
    out = enc(torch.randn(2, 60, length))
    expected = -(-length // downsample)
    assert out.shape == (2, expected, 32)
    assert enc.output_length(length) == expected


def test_sequence_encoder_errors() -> None:
    with pytest.raises(ValueError, match="power of 2 no larger than 2\\*\\*depth=4, got 8"):
        create_encoder("sequence", 4, depth=2, downsample=8)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 4, T\), got \(2, 4\)"):
        create_encoder("sequence", 4)(torch.randn(2, 4))


def test_registry() -> None:
    from dcat.nn.encoders.registry import ENCODERS

    # the test's encoder is registered in a scope: other tests see the registry as shipped
    with ENCODERS.scoped():
        assert {"imu", "sequence"} <= set(list_encoders())
        with pytest.raises(
            ValueError, match=r"unknown encoder 'lidar'; registered encoders: .*imu"
        ):
            create_encoder("lidar", 3)
        with pytest.raises(
            ValueError, match=r"encoder 'imu': .*unexpected keyword argument 'width'"
        ):
            create_encoder("imu", 3, width=5)

        @register_encoder("test-linear")
        class Linear(nn.Module):
            def __init__(self, in_channels: int, d_model: int = 4) -> None:
                super().__init__()
                self.d_model = d_model
                self.proj = nn.Linear(in_channels, d_model)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.proj(x.transpose(1, 2))

        assert create_encoder("test-linear", 2).d_model == 4
        with pytest.raises(ValueError, match="already registered"):
            register_encoder("test-linear")(IMUEncoder)
    assert "test-linear" not in list_encoders()


def test_modality_net_forward_and_embedding() -> None:
    net = ModalityNet(create_encoder("imu", 6), d_out=64, num_classes=27, dropout=0.5).eval()
    x = torch.randn(4, 6, 100)
    logits, (k, q, v) = net(x)
    assert logits.shape == (4, 27)
    assert k.shape == q.shape == v.shape == (4, 25, 64)
    out = net.forward_all(x)
    torch.testing.assert_close(out.logits, logits)
    assert out.embedding.shape == (4, 64)
    torch.testing.assert_close(net.embed(x), out.embedding)
    torch.testing.assert_close(net.head(out.embedding), logits)  # eval: dropout is identity


def test_modality_nets_of_different_lengths_feed_the_loss() -> None:
    from dcat import cross_attention_loss

    source = ModalityNet(create_encoder("sequence", 60, d_model=32), d_out=48, num_classes=5)
    target = ModalityNet(create_encoder("imu", 6), d_out=48, num_classes=5)
    _, kqv_a = source(torch.randn(3, 60, 40))
    logits_b, kqv_b = target(torch.randn(3, 6, 128))
    assert kqv_a[0].shape[1] == 20 and kqv_b[0].shape[1] == 32
    loss = F.cross_entropy(logits_b, torch.tensor([0, 1, 2])) + cross_attention_loss(kqv_a, kqv_b)
    loss.backward()
    assert all(p.grad is None for p in source.parameters())
    assert target.attention.key.weight.grad is not None


def test_modality_net_errors() -> None:
    with pytest.raises(ValueError, match="must expose a positive int attribute d_model"):
        ModalityNet(nn.Identity(), 8, 3)
    with pytest.raises(ValueError, match="num_classes must be at least 2, got 1"):
        ModalityNet(create_encoder("imu", 6), 8, 1)


def test_core_imports_no_training_framework() -> None:
    code = (
        "import sys, dcat, dcat.nn.losses, dcat.nn.attention, dcat.nn.model, dcat.nn.encoders; "
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'torchmetrics') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("depth", "channels", "size", "d_model", "expected"),
    [
        (18, 3, 32, None, 512),
        (18, 1, 40, 64, 64),
        (34, 4, 33, 32, 32),
    ],
)
def test_video_encoder_shapes(depth, channels, size, d_model, expected) -> None:
    enc = create_encoder("video", channels, depth=depth, d_model=d_model).eval()
    out = enc(torch.randn(2, 5, channels, size, size))
    assert out.shape == (2, 5, expected) and enc.d_model == expected
    with pytest.raises(ValueError, match=rf"expects input of shape \(B, F, {channels}, H, W\)"):
        enc(torch.randn(2, channels, size, size))


def test_video_encoder_loads_local_weights(tmp_path) -> None:
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    enc = create_encoder("video", 3, depth=18, weights=path)
    torch.testing.assert_close(enc.trunk.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    grey = create_encoder("video", 1, depth=18, weights=path)
    torch.testing.assert_close(
        grey.trunk.conv1.weight, reference.conv1.weight.mean(1, keepdim=True)
    )


def test_video_encoder_channels_last_and_uint8_input() -> None:
    enc = create_encoder("video", 3, depth=18, d_model=16, channels_last=True).eval()
    weight = enc.trunk.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    frames = torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(enc(frames), enc(frames.float() / 255), rtol=1e-5, atol=1e-5)
