"""Attention placements of ModalityNet: serial (the paper's), residual, side, and none (the
plain reference)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dcat.errors import DcatError
from dcat.nn.encoders import create_encoder
from dcat.nn.model import ModalityNet
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

PLACEMENTS = ["serial", "residual", "side"]


def _net(attention: str, *, d_model: int = 12, d_out: int = 8, aux_head: bool = False):
    torch.manual_seed(0)
    encoder = create_encoder("sequence", 6, d_model=d_model, depth=1)
    return ModalityNet(encoder, d_out=d_out, num_classes=5, attention=attention, aux_head=aux_head)


@pytest.mark.parametrize("attention", PLACEMENTS)
@pytest.mark.parametrize("d_model", [8, 12])  # equal to d_out, and not
def test_shapes_and_kqv(attention: str, d_model: int) -> None:
    net = _net(attention, d_model=d_model, aux_head=True).eval()
    out = net.forward_all(torch.randn(3, 6, 20))
    assert out.logits.shape == (3, 5) and out.aux_logits.shape == (3, 5)
    k, q, v = out.kqv
    assert k.shape == q.shape == v.shape == (3, 10, 8)  # the sequence encoder halves T
    width = d_model if attention == "side" else 8
    assert net.embedding_dim == width and out.embedding.shape == (3, width)
    logits, kqv = net(torch.randn(3, 6, 20))
    assert logits.shape == (3, 5) and len(kqv) == 3


def test_serial_is_the_papers_network() -> None:
    net = _net("serial").eval()
    x = torch.randn(2, 6, 20)
    e = net.encoder(x)
    out, _ = net.attention(e)
    torch.testing.assert_close(net(x)[0], net.head(out.mean(1)))


@pytest.mark.parametrize("d_model", [8, 12])
def test_residual_adds_the_prenormed_attention_to_the_embeddings(d_model: int) -> None:
    net = _net("residual", d_model=d_model).eval()
    x = torch.randn(2, 6, 20)
    e = net.encoder(x)
    out, (k, _, _) = net.attention(F.layer_norm(e, (d_model,), net.norm.weight, net.norm.bias))
    skip = e if d_model == 8 else net.skip(e)
    torch.testing.assert_close(net(x)[0], net.head((skip + out).mean(1)))
    torch.testing.assert_close(net(x)[1][0], k)
    assert isinstance(net.skip, torch.nn.Identity) == (d_model == 8)


def test_side_logits_do_not_depend_on_the_attention() -> None:
    net = _net("side").eval()
    x = torch.randn(4, 6, 20)
    logits, (k, _, _) = net(x)
    with torch.no_grad():
        for p in net.attention.parameters():
            p.add_(torch.randn_like(p))
    changed, (k2, _, _) = net(x)
    torch.testing.assert_close(changed, logits)  # the head bypasses the attention
    assert not torch.allclose(k, k2)  # but K, Q, V follow its weights
    torch.testing.assert_close(logits, net.head(net.encoder(x).mean(1)))


def test_side_attention_learns_only_through_the_aux_head_or_the_transfer_loss() -> None:
    x, y = torch.randn(4, 6, 20), torch.tensor([0, 1, 2, 3])
    batch = {"inputs": {"imu": x}, "label": y}
    plain = UnimodalTask(_net("side"), "imu")
    plain(batch)["loss"].backward()
    assert plain.target.attention.key.weight.grad is None  # no path from the head
    with_aux = UnimodalTask(_net("side", aux_head=True), "imu")
    out = with_aux(batch)
    torch.testing.assert_close(out["loss"], out["ce"] + out["aux_ce"])
    out["loss"].backward()
    assert with_aux.target.attention.value.weight.grad.abs().sum() > 0
    # as a target of D-CAT, the loss reaches W_K and W_V without an aux head
    source = _net("side", aux_head=True)
    spec = SourceSpec("skel", source, weight=1.0, options={"mcma": False})  # a random source
    task = TransferTask(_net("side"), "imu", [spec])
    batch["inputs"]["skel"] = torch.randn(4, 6, 20)
    task(batch)["loss"].backward()
    assert task.target.attention.key.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in source.parameters())  # the source stays frozen


@pytest.mark.parametrize("attention", [*PLACEMENTS, "none"])
def test_architecture_round_trip_keeps_the_placement(attention: str) -> None:
    net = _net(attention, aux_head=attention == "side").eval()
    again = ModalityNet.from_architecture(net.architecture())
    assert again.placement == attention and (again.aux_head is not None) == (attention == "side")
    again.load_state_dict(net.state_dict())
    x = torch.randn(2, 6, 20)
    torch.testing.assert_close(again.eval()(x)[0], net(x)[0])
    # cards written before placements existed rebuild the paper's serial network
    old = {k: v for k, v in net.architecture().items() if k not in ("attention", "aux_head")}
    assert ModalityNet.from_architecture(old).placement == "serial"


def test_unknown_placement_is_refused() -> None:
    with pytest.raises(
        DcatError, match=r"attention must be one of \['serial', 'residual', 'side', 'none'\]"
    ):
        _net("parallel")


def test_none_is_the_plain_encoder_pool_head_classifier() -> None:
    net = _net("none", d_model=12).eval()
    assert net.attention is None
    assert not any("attention" in name for name, _ in net.named_parameters())
    x = torch.randn(3, 6, 20)
    out = net.forward_all(x)
    torch.testing.assert_close(out.logits, net.head(net.encoder(x).mean(1)))
    assert out.embedding.shape == (3, 12) and all(t.shape == (3, 0, 8) for t in out.kqv)
    with pytest.raises(DcatError, match="aux_head needs an attention"):
        _net("none", aux_head=True)


def test_dcat_refuses_a_network_without_attention() -> None:
    from dcat.training.methods.cross_attention import CrossAttentionTransfer
    from dcat.training.methods.logit_kd import LogitDistillation

    with pytest.raises(DcatError, match=r"target network \(source 's'\) has no attention"):
        CrossAttentionTransfer(_net("serial"), _net("none"), name="s")
    with pytest.raises(DcatError, match=r"source network \(source 's'\) has no attention"):
        CrossAttentionTransfer(_net("none"), _net("serial"), name="s")
    # methods that do not read the attention work with a plain network on either side
    task = TransferTask(_net("none"), "x", [SourceSpec("s", _net("none"), "x", "logit_kd")])
    batch = {"inputs": {"x": torch.randn(4, 6, 20)}, "label": torch.tensor([0, 1, 2, 3])}
    assert torch.isfinite(task(batch)["kd"]) and LogitDistillation.component == "kd"


def test_feature_and_contrastive_heads_size_from_the_embedding() -> None:
    from dcat.training.methods.contrastive import ContrastiveAlignment
    from dcat.training.methods.feature import FeatureAlignment

    target, source = _net("side", d_model=12), _net("serial", d_model=12)
    feature = FeatureAlignment(source, target, name="s")
    assert feature.projection.in_features == 12 and feature.projection.out_features == 8
    contrastive = ContrastiveAlignment(source, target, name="s")
    assert contrastive.heads["target"].in_features == 12
    assert contrastive.heads["source"].in_features == 8


@pytest.mark.parametrize("attention", [*PLACEMENTS, "none"])
def test_every_placement_exports_to_onnx(attention: str, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    import numpy as np

    from dcat.deploy.export import DeployedNet, _onnx, _onnx_logits

    model = DeployedNet(_net(attention, aux_head=attention != "none")).eval()
    x = torch.randn(3, 6, 20)
    _onnx(model, x[:2], tmp_path / "model.onnx")
    with torch.no_grad():
        reference = model(x).numpy()
    got = _onnx_logits(tmp_path / "model.onnx", x.numpy())
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=1e-4)
