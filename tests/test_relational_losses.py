"""DKD, RKD and SP: each loss against a loop over its paper's formula and a value worked out by
hand, their invariances, gradients and errors, and the three methods through a TransferTask."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dcat.errors import DcatError
from dcat.nn.peer_losses import dkd_loss
from dcat.nn.relational_losses import (
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
    similarity_preserving_loss,
)
from dcat.training.methods import get_method, list_methods, resolve_method
from dcat.training.tasks import SourceSpec, TransferTask

from conftest import small_net

SQRT2 = math.sqrt(2.0)


def _close(actual: torch.Tensor, expected: float) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32))


def _smooth_l1(x: float) -> float:  # Huber with β = 1, written out
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


# ---------------------------------------------------------------------------------------------
# DKD


def _dkd_by_loop(source, target, labels, alpha, beta, temperature) -> float:
    """The paper's Eq. (TCKD, NCKD) per sample; p̂_k = p_k / (1 − p_t) over the other classes."""
    total = 0.0
    for z_s, z_t, t in zip(source.tolist(), target.tolist(), labels.tolist(), strict=True):
        p = [math.exp(v / temperature) for v in z_s]
        q = [math.exp(v / temperature) for v in z_t]
        p = [v / sum(p) for v in p]
        q = [v / sum(q) for v in q]
        tckd = p[t] * math.log(p[t] / q[t]) + (1 - p[t]) * math.log((1 - p[t]) / (1 - q[t]))
        nckd = 0.0
        for k in range(len(p)):
            if k != t:
                p_hat, q_hat = p[k] / (1 - p[t]), q[k] / (1 - q[t])
                nckd += p_hat * math.log(p_hat / q_hat)
        total += (alpha * tckd + beta * nckd) * temperature**2
    return total / len(labels)


@pytest.fixture
def logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return 2 * torch.randn(6, 5), 2 * torch.randn(6, 5), torch.tensor([0, 4, 2, 2, 1, 3])


def test_dkd_matches_a_loop_over_the_formula(logits) -> None:
    source, target, labels = logits
    for alpha, beta, temperature in [(1.0, 8.0, 4.0), (1.5, 0.5, 1.0), (0.0, 2.0, 0.7)]:
        value = dkd_loss(source, target, labels, alpha=alpha, beta=beta, temperature=temperature)
        _close(value, _dkd_by_loop(source, target, labels, alpha, beta, temperature))
    _close(dkd_loss(source, source, labels), 0.0)  # matching the source costs nothing


def test_dkd_hand_computed_three_classes() -> None:
    # source uniform (1/3 each), target (1/2, 1/4, 1/4) at T = 1
    source, target = torch.zeros(1, 3), torch.tensor([[math.log(2.0), 0.0, 0.0]])
    # label 0: binary (1/3, 2/3) vs (1/2, 1/2); the other classes are (1/2, 1/2) in both
    tckd = math.log(2 / 3) / 3 + 2 * math.log(4 / 3) / 3  # 0.0566330
    _close(dkd_loss(source, target, torch.tensor([0]), beta=8.0, temperature=1.0), tckd)
    # label 1: binary (1/3, 2/3) vs (1/4, 3/4); others (1/2, 1/2) vs (2/3, 1/3)
    tckd = math.log(4 / 3) / 3 + 2 * math.log(8 / 9) / 3  # 0.0173738
    nckd = math.log(3 / 4) / 2 + math.log(3 / 2) / 2  # log(9/8) / 2 = 0.0588915
    _close(dkd_loss(source, target, torch.tensor([1]), beta=8.0, temperature=1.0), tckd + 8 * nckd)
    # twice the logits at T = 2: the same distributions, times T² = 4
    value = dkd_loss(2 * source, 2 * target, torch.tensor([1]), alpha=0.5, temperature=2.0)
    _close(value, 4 * (0.5 * tckd + 8 * nckd))


def test_dkd_without_nckd_is_the_binary_kl(logits) -> None:
    source, target, labels = logits
    temperature = 3.0
    p = torch.softmax(source / temperature, 1).gather(1, labels[:, None])[:, 0]
    q = torch.softmax(target / temperature, 1).gather(1, labels[:, None])[:, 0]
    binary_kl = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    value = dkd_loss(source, target, labels, alpha=1.0, beta=0.0, temperature=temperature)
    torch.testing.assert_close(value, binary_kl.mean() * temperature**2)


def test_dkd_nckd_excludes_the_target_class(logits) -> None:
    source, target, labels = logits
    rows = torch.arange(len(labels))
    moved_s, moved_t = source.clone(), target.clone()
    moved_s[rows, labels] += torch.linspace(-5, 5, len(labels))
    moved_t[rows, labels] -= 3.0
    nckd = dkd_loss(source, target, labels, alpha=0.0, beta=1.0)
    torch.testing.assert_close(dkd_loss(moved_s, moved_t, labels, alpha=0.0, beta=1.0), nckd)
    assert nckd > 0.01
    # the same edit changes the target class's share, and a non-target logit changes NCKD
    tckd = dkd_loss(source, target, labels, alpha=1.0, beta=0.0)
    assert (dkd_loss(moved_s, moved_t, labels, alpha=1.0, beta=0.0) - tckd).abs() > 1e-3
    other = target.clone()
    other[rows, (labels + 1) % 5] += 2.0
    assert (dkd_loss(source, other, labels, alpha=0.0, beta=1.0) - nckd).abs() > 1e-3


def test_dkd_errors_name_the_argument_and_shape() -> None:
    z = torch.zeros(2, 3)
    with pytest.raises(DcatError, match=r"must both be \(B, K\), got \(2, 3\) and \(2, 4\)"):
        dkd_loss(z, torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(DcatError, match=r"need K ≥ 2 classes for DKD, got \(2, 1\)"):
        dkd_loss(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([0, 0]))
    with pytest.raises(DcatError, match=r"labels must have shape \(2,\) .* \(2, 3\), got \(3,\)"):
        dkd_loss(z, z, torch.tensor([0, 1, 2]))
    with pytest.raises(DcatError, match="labels must be integer class indices, got dtype"):
        dkd_loss(z, z, torch.tensor([0.0, 1.0]))
    with pytest.raises(DcatError, match=r"in \[0, 3\) for source_logits \(2, 3\), got .* 0 to 3"):
        dkd_loss(z, z, torch.tensor([0, 3]))
    with pytest.raises(DcatError, match="beta must be ≥ 0, got -1"):
        dkd_loss(z, z, torch.tensor([0, 1]), beta=-1.0)
    with pytest.raises(DcatError, match="temperature must be positive, got 0"):
        dkd_loss(z, z, torch.tensor([0, 1]), temperature=0)


# ---------------------------------------------------------------------------------------------
# RKD and SP


def _rkd_by_loop(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(L_D, L_A) over the distinct pairs and triplets, as the paper's χ² and χ³ define them."""
    n = len(source)

    def distances(x):
        d = {(i, j): np.linalg.norm(x[i] - x[j]) for i in range(n) for j in range(n) if i != j}
        mu = sum(d.values()) / len(d)
        return {key: value / mu for key, value in d.items()}

    d_s, d_t = distances(source), distances(target)
    l_d = sum(_smooth_l1(d_t[key] - d_s[key]) for key in d_s) / len(d_s)

    def cosine(x, i, j, k):
        e_ij = (x[i] - x[j]) / np.linalg.norm(x[i] - x[j])
        e_kj = (x[k] - x[j]) / np.linalg.norm(x[k] - x[j])
        return float(e_ij @ e_kj)

    triplets = [
        (i, j, k) for i in range(n) for j in range(n) for k in range(n) if len({i, j, k}) == 3
    ]
    l_a = sum(_smooth_l1(cosine(target, *ijk) - cosine(source, *ijk)) for ijk in triplets) / len(
        triplets
    )
    return l_d, l_a


def _sp_by_loop(source: np.ndarray, target: np.ndarray) -> float:
    n = len(source)

    def normalised_gram(x):
        g = np.array([[x[i] @ x[j] for j in range(n)] for i in range(n)])
        return np.stack([row / np.linalg.norm(row) for row in g])

    diff = normalised_gram(target) - normalised_gram(source)
    return float(sum(diff[i, j] ** 2 for i in range(n) for j in range(n)) / n**2)


@pytest.fixture
def embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(6, 7), torch.randn(6, 4)  # Ds = 7, Dt = 4


def test_rkd_matches_a_loop_over_the_formula(embeddings) -> None:
    source, target = embeddings
    l_d, l_a = _rkd_by_loop(source.double().numpy(), target.double().numpy())
    _close(rkd_distance_loss(source, target), l_d)
    _close(rkd_angle_loss(source, target), l_a)
    _close(rkd_loss(source, target), l_d + 2 * l_a)
    _close(rkd_loss(source, target, distance_weight=0.5, angle_weight=0.0), 0.5 * l_d)
    assert l_d > 0.01 and l_a > 0.01


def test_rkd_hand_computed_three_points() -> None:
    source = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])  # on a line
    target = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # a right angle at the first
    # distances 01, 02, 12: source (1, 2, 1) / (4/3); target (1, 1, √2) / ((2 + √2)/3)
    psi_s = [3 / 4, 3 / 2, 3 / 4]
    psi_t = [3 / (2 + SQRT2), 3 / (2 + SQRT2), 3 * SQRT2 / (2 + SQRT2)]
    l_d = sum(0.5 * (t - s) ** 2 for s, t in zip(psi_s, psi_t, strict=True)) / 3  # 0.1075491
    _close(rkd_distance_loss(source, target), l_d)
    # cosine at each vertex (each one is the apex of 2 ordered triplets): source 1, −1, 1;
    # target 0, 1/√2, 1/√2; Huber of the differences −1, 1 + 1/√2, 1/√2 − 1
    l_a = (0.5 + (1 + 1 / SQRT2 - 0.5) + 0.5 * (1 / SQRT2 - 1) ** 2) / 3  # 0.5833333
    _close(rkd_angle_loss(source, target), l_a)
    _close(rkd_loss(source, target, distance_weight=1.0, angle_weight=2.0), l_d + 2 * l_a)
    _close(rkd_loss(target, target), 0.0)


def test_rkd_is_invariant_to_scale_rotation_and_translation(embeddings) -> None:
    source, target = embeddings
    rotation, _ = torch.linalg.qr(torch.randn(4, 4))
    moved = 3.7 * target @ rotation + torch.randn(4)
    torch.testing.assert_close(rkd_distance_loss(source, moved), rkd_distance_loss(source, target))
    torch.testing.assert_close(rkd_angle_loss(source, moved), rkd_angle_loss(source, target))
    torch.testing.assert_close(
        rkd_distance_loss(0.01 * source, target), rkd_distance_loss(source, target)
    )
    _close(rkd_loss(source, 0.2 * source), 0.0)  # a scaled copy has the same relations


def test_rkd_batches_without_pairs_or_triplets_give_zero() -> None:
    """The rule: a term whose batch has no pair (B < 2) or no triplet (B < 3) is 0, and
    backward still runs, because an epoch's last batch may be that small."""
    for batch in (1, 2):
        target = torch.randn(batch, 3, requires_grad=True)
        value = rkd_angle_loss(torch.randn(batch, 5), target)
        _close(value, 0.0)
        value.backward()
        assert target.grad is not None and torch.all(target.grad == 0)
    _close(rkd_distance_loss(torch.randn(1, 5), torch.randn(1, 3)), 0.0)
    # two samples have one pair: each normalised distance is 1, so the distance term is 0 too
    _close(rkd_loss(torch.randn(2, 5), torch.randn(2, 3)), 0.0)


def test_sp_matches_a_loop_over_the_formula(embeddings) -> None:
    source, target = embeddings
    expected = _sp_by_loop(source.double().numpy(), target.double().numpy())
    _close(similarity_preserving_loss(source, target), expected)
    assert expected > 0.01
    _close(similarity_preserving_loss(target, target), 0.0)


def test_sp_hand_computed_two_samples() -> None:
    # source orthogonal rows: G̃ = I; target equal rows: G̃ = all 1/√2
    # ‖G̃_t − G̃_s‖² = 2 (1/√2 − 1)² + 2 · 1/2 = 4 − 2√2, divided by B² = 4
    value = similarity_preserving_loss(torch.eye(2), torch.tensor([[1.0, 0.0, 0.0]] * 2))
    _close(value, 1 - SQRT2 / 2)  # 0.2928932


def test_sp_invariances_are_those_of_the_row_normalised_gram(embeddings) -> None:
    source, target = embeddings
    reference = similarity_preserving_loss(source, target)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4))
    torch.testing.assert_close(
        similarity_preserving_loss(source, 5.0 * target @ rotation), reference
    )
    # rescaling one sample scales its row of G (removed) and its column (kept): not invariant
    per_sample = torch.tensor([1.0, 3.0, 0.5, 1.0, 2.0, 1.0])[:, None]
    assert (similarity_preserving_loss(source, per_sample * target) - reference).abs() > 1e-3


@pytest.mark.parametrize(
    "loss",
    [rkd_distance_loss, rkd_angle_loss, rkd_loss, similarity_preserving_loss],
    ids=lambda f: f.__name__,
)
def test_gradients_reach_only_the_target(loss, embeddings) -> None:
    source, target = (x.clone().requires_grad_() for x in embeddings)
    target.data[1] = target.data[0]  # two equal target embeddings: a zero distance
    loss(source, target).backward()
    assert source.grad is None
    assert target.grad is not None and torch.isfinite(target.grad).all()
    assert target.grad.abs().sum() > 0


def test_dkd_gradients_reach_only_the_target(logits) -> None:
    source, target, labels = logits
    source, target = source.clone().requires_grad_(), target.clone().requires_grad_()
    dkd_loss(source, target, labels).backward()
    assert source.grad is None
    assert torch.isfinite(target.grad).all() and target.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", [rkd_loss, similarity_preserving_loss], ids=lambda f: f.__name__)
def test_relational_errors_name_the_shapes(loss) -> None:
    pattern = r"source_emb and target_emb must be \(B, Ds\) and \(B, Dt\) with the same B, got"
    with pytest.raises(DcatError, match=pattern + r" \(4, 3\) and \(5, 3\)"):
        loss(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(DcatError, match=pattern + r" \(4,\) and \(4, 3\)"):
        loss(torch.zeros(4), torch.zeros(4, 3))


def test_relational_value_errors() -> None:
    with pytest.raises(DcatError, match="angle_weight must be ≥ 0, got -1"):
        rkd_loss(torch.zeros(4, 3), torch.zeros(4, 2), angle_weight=-1.0)
    with pytest.raises(DcatError, match=r"at least one sample, got \(0, 3\) and \(0, 2\)"):
        similarity_preserving_loss(torch.zeros(0, 3), torch.zeros(0, 2))


# ---------------------------------------------------------------------------------------------
# The methods


def test_methods_are_registered_after_contrastive() -> None:
    names = list_methods()
    at = names.index("contrastive")
    assert names[at + 1 : at + 4] == ["dkd", "rkd", "sp"]
    described = [(get_method(n).label, get_method(n).component) for n in ("dkd", "rkd", "sp")]
    assert described == [("DKD", "dkd"), ("RKD", "rkd"), ("SP", "sp")]
    assert "CVPR 2022" in get_method("dkd").reference
    assert "CVPR 2019" in get_method("rkd").reference
    assert "ICCV 2019" in get_method("sp").reference


@pytest.mark.parametrize("method", ["dkd", "rkd", "sp"])
def test_method_through_a_transfer_task(paired, method: str) -> None:
    # a wider source: the relational methods compare (B, 32) with (B, 16)
    source, target = small_net("skeleton", d_out=32).eval(), small_net("imu").eval()
    spec = SourceSpec("skel", source, modality="skeleton", method=method, weight=0.5)
    task = TransferTask(target, "imu", [spec]).eval()
    batch = next(iter(DataLoader(paired.subset(range(12)), batch_size=12)))
    out = task(batch)
    src = source.forward_all(batch["inputs"]["skeleton"])
    tgt = target.forward_all(batch["inputs"]["imu"])
    expected = {
        "dkd": lambda: dkd_loss(src.logits, tgt.logits, batch["label"]),
        "rkd": lambda: rkd_loss(src.embedding, tgt.embedding),
        "sp": lambda: similarity_preserving_loss(src.embedding, tgt.embedding),
    }[method]()
    torch.testing.assert_close(out[f"{method}/skel"], expected)
    torch.testing.assert_close(out[method], expected)
    torch.testing.assert_close(out["loss"], out["ce"] + 0.5 * expected)
    assert torch.isfinite(out["loss"]) and expected > 0
    out["loss"].backward()
    grads = [p.grad for p in target.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in source.parameters())


def test_dkd_needs_the_same_classes() -> None:
    spec = SourceSpec("skel", small_net("skeleton", classes=5), modality="skeleton", method="dkd")
    with pytest.raises(DcatError, match="has 5 classes but the target has 3"):
        TransferTask(small_net("imu"), "imu", [spec])


def test_resolve_method_options() -> None:
    variant = resolve_method({"name": "dkd", "temperature": 2.0})
    assert variant.option_dict == {"alpha": 1.0, "beta": 8.0, "temperature": 2.0}
    assert (variant.tag, variant.label) == ("dkd_temperature2", "DKD (temperature=2)")
    assert resolve_method("rkd").option_dict == {"distance_weight": 1.0, "angle_weight": 2.0}
    assert resolve_method({"name": "rkd", "distance_weight": 0}).option_dict["distance_weight"] == 0
    assert resolve_method("sp").option_dict == {}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "dkd", "temperature": 0.0}, "methods: temperature must be positive, got 0.0"),
        ({"name": "dkd", "alpha": -1.0}, "methods: alpha must be ≥ 0, got -1.0"),
        ({"name": "dkd", "beta": "high"}, "option 'beta' of method 'dkd' must be float"),
        ({"name": "rkd", "angle_weight": -0.5}, "methods: angle_weight must be ≥ 0, got -0.5"),
        (
            {"name": "rkd", "distance_weight": 0.0, "angle_weight": 0.0},
            "distance_weight and angle_weight of method 'rkd' are both 0",
        ),
        ({"name": "sp", "temperature": 1.0}, r"unknown option\(s\) \['temperature'\]"),
    ],
)
def test_bad_method_options(entry: dict, message: str) -> None:
    with pytest.raises(DcatError, match=message):
        resolve_method(entry)
