"""The cross-attention loss: golden values, properties, both paths, gradients, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from dcat import cross_attention_loss, mcma_mask
from dcat.errors import DcatError
from dcat.nn.losses import (
    DEFAULT_EPS,
    choose_method,
    cross_attention_distance,
    source_square,
)

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "golden_loss.json").read_text())
METHODS = ("materialize", "gram")


def _tensors(case: dict, dtype: torch.dtype = torch.float64) -> tuple:
    return tuple(torch.tensor(case[key], dtype=dtype) for key in ("k_a", "v_a", "k_b", "v_b"))


def _random_kqv(seed: int, batch: int, s_a: int, s_b: int, d: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    k_a, v_a = (torch.randn(batch, s_a, d, generator=g, dtype=dtype) for _ in range(2))
    k_b, v_b = (torch.randn(batch, s_b, d, generator=g, dtype=dtype) for _ in range(2))
    return k_a, v_a, k_b, v_b


shapes = st.tuples(
    st.integers(0, 2**31 - 1),
    st.integers(1, 5),
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(1, 24),
)


# --- golden values -------------------------------------------------------------------------


def test_golden_fixture_matches_its_own_formula() -> None:
    # Guards the fixture itself: recompute with an independent einsum formulation.
    for case in GOLDEN["cases"]:
        k_a, v_a, k_b, v_b = (np.asarray(case[key]) for key in ("k_a", "v_a", "k_b", "v_b"))
        m_a = np.einsum("bsi,bsj->bij", k_a, v_a)
        m_b = np.einsum("bsi,bsj->bij", k_b, v_b)
        n_a = np.maximum(np.linalg.norm(m_a, axis=(1, 2)), GOLDEN["eps"])[:, None, None]
        n_b = np.maximum(np.linalg.norm(m_b, axis=(1, 2)), GOLDEN["eps"])[:, None, None]
        expected = np.linalg.norm(m_b / n_b - m_a / n_a, axis=(1, 2))
        np.testing.assert_allclose(expected, case["per_sample"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", [*METHODS, "auto"])
def test_golden_values(method: str) -> None:
    for case in GOLDEN["cases"]:
        k_a, v_a, k_b, v_b = _tensors(case)
        mask = torch.tensor(case["mask"])
        src, tgt = (k_a, None, v_a), (k_b, None, v_b)
        per_sample = cross_attention_loss(src, tgt, reduction="none", method=method)
        torch.testing.assert_close(
            per_sample, torch.tensor(case["per_sample"], dtype=torch.float64), rtol=0, atol=1e-10
        )
        mean = cross_attention_loss(src, tgt, method=method)
        assert mean.item() == pytest.approx(case["mean"], abs=1e-10)
        masked = cross_attention_loss(src, tgt, mask, method=method)
        assert masked.item() == pytest.approx(case["masked_mean"], abs=1e-10)
        summed = cross_attention_loss(src, tgt, mask, reduction="sum", method=method)
        assert summed.item() == pytest.approx(case["masked_sum"], abs=1e-10)


def test_golden_values_float32() -> None:
    for case in GOLDEN["cases"]:
        k_a, v_a, k_b, v_b = _tensors(case, torch.float32)
        for method in METHODS:
            got = cross_attention_loss(
                (k_a, None, v_a), (k_b, None, v_b), reduction="none", method=method
            )
            assert got.dtype == torch.float32
            np.testing.assert_allclose(got.numpy(), case["per_sample"], atol=1e-5)


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_range_and_paths_agree_float64(shape: tuple) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(*shape)
    results = [
        cross_attention_distance((k_a, None, v_a), (k_b, None, v_b), method=m) for m in METHODS
    ]
    for values in results:
        assert values.shape == (shape[1],)
        assert bool(((values >= 0) & (values <= 2 + 1e-12)).all())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(shapes, st.sampled_from([0.0, 1e-4, 1e-2, 1.0]))
# K nearly orthogonal to V (Σ k·v = −0.0101 in sample 1): the float32 Gram sums cancel
@example((0, 5, 4, 1, 1), 0.0)
# ‖KᵀV‖²/(‖K‖²‖V‖²) of 2e-8 (d = 1): even float64 Gram sums were 4e-5 off; now materialised
@example((15, 1, 3, 2, 1), 0.0)
def test_paths_agree_float32_including_near_identical(shape: tuple, noise: float) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(*shape, dtype=torch.float32)
    if noise and shape[2] == shape[3]:
        k_b, v_b = k_a + noise * k_b, v_a + noise * v_b
    src, tgt = (k_a, None, v_a), (k_b, None, v_b)
    mat = cross_attention_distance(src, tgt, method="materialize")
    gram = cross_attention_distance(src, tgt, method="gram")
    torch.testing.assert_close(gram, mat, rtol=0, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_identical_inputs_give_zero(shape: tuple) -> None:
    k_a, v_a, _, _ = _random_kqv(*shape)
    for method in METHODS:
        values = cross_attention_distance(
            (k_a, None, v_a), (k_a.clone(), None, v_a.clone()), method=method
        )
        assert values.abs().max().item() <= 1e-7


@settings(max_examples=40, deadline=None)
@given(shapes, st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.booleans())
def test_invariant_to_positive_scaling_of_one_sample(
    shape: tuple, a: float, b: float, source: bool
) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(*shape)
    before = cross_attention_distance((k_a, None, v_a), (k_b, None, v_b))
    if source:
        k_a, v_a = k_a.clone(), v_a.clone()
        k_a[0] *= a
        v_a[0] *= b
    else:
        k_b, v_b = k_b.clone(), v_b.clone()
        k_b[0] *= a
        v_b[0] *= b
    # invariance holds where ‖M‖ is well above the ε floor of the normalisation
    for k, v in ((k_a, v_a), (k_b, v_b)):
        assume(torch.linalg.matrix_norm(k.transpose(1, 2) @ v).min().item() > 1e3 * DEFAULT_EPS)
    after = cross_attention_distance((k_a, None, v_a), (k_b, None, v_b))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1))
def test_masked_mean_is_mean_over_selected(shape: tuple, mask_seed: int) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(*shape)
    batch = shape[1]
    mask = torch.rand(batch, generator=torch.Generator().manual_seed(mask_seed)) < 0.5
    src, tgt = (k_a, None, v_a), (k_b, None, v_b)
    per_sample = cross_attention_loss(src, tgt, reduction="none")
    loss = cross_attention_loss(src, tgt, mask)
    expected = per_sample[mask].mean().item() if mask.any() else 0.0
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    masked_none = cross_attention_loss(src, tgt, mask, reduction="none")
    torch.testing.assert_close(masked_none, torch.where(mask, per_sample, 0.0))


# --- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(method: str) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(3, 3, 4, 3, 5)
    k_b.requires_grad_(True)
    v_b.requires_grad_(True)
    mask = torch.tensor([True, False, True])

    def fn(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return cross_attention_loss((k_a, None, v_a), (k, None, v), mask, method=method)

    assert torch.autograd.gradcheck(fn, (k_b, v_b))
    assert torch.autograd.gradgradcheck(fn, (k_b, v_b))


@pytest.mark.parametrize("method", METHODS)
def test_no_gradient_reaches_source(method: str) -> None:
    k_a, v_a, k_b, v_b = (t.requires_grad_(True) for t in _random_kqv(1, 2, 3, 4, 6))
    cross_attention_loss((k_a, None, v_a), (k_b, None, v_b), method=method).backward()
    assert k_a.grad is None and v_a.grad is None
    assert k_b.grad is not None and k_b.grad.abs().sum() > 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradients_at_identity_and_zero(method: str, dtype: torch.dtype) -> None:
    k_a, v_a, _, _ = _random_kqv(2, 3, 4, 4, 6, dtype=dtype)
    k_b, v_b = k_a.clone().requires_grad_(True), v_a.clone().requires_grad_(True)
    loss = cross_attention_loss((k_a, None, v_a), (k_b, None, v_b), method=method)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(k_b.grad).all() and torch.isfinite(v_b.grad).all()
    zeros_k = torch.zeros_like(k_a, requires_grad=True)
    zeros_v = torch.zeros_like(v_a, requires_grad=True)
    loss = cross_attention_loss((k_a, None, v_a), (zeros_k, None, zeros_v), method=method)
    loss.backward()
    assert loss.item() == pytest.approx(1.0)  # ‖0 − M̂_a‖ = 1
    assert torch.isfinite(zeros_k.grad).all() and torch.isfinite(zeros_v.grad).all()


@pytest.mark.parametrize("method", METHODS)
def test_all_false_mask_is_exact_zero_in_graph(method: str) -> None:
    k_a, v_a, k_b, v_b = _random_kqv(4, 3, 5, 2, 8, dtype=torch.float32)
    k_b.requires_grad_(True)
    v_b.requires_grad_(True)
    loss = cross_attention_loss(
        (k_a, None, v_a), (k_b, None, v_b), torch.zeros(3, dtype=torch.bool), method=method
    )
    assert loss.item() == 0.0
    assert loss.requires_grad and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(k_b.grad, torch.zeros_like(k_b)) and torch.equal(
        v_b.grad, torch.zeros_like(v_b)
    )


def test_low_precision_inputs_computed_in_float32() -> None:
    k_a, v_a, k_b, v_b = _random_kqv(5, 2, 6, 4, 32, dtype=torch.float32)
    reference = cross_attention_distance((k_a, None, v_a), (k_b, None, v_b))
    half = [t.to(torch.bfloat16) for t in (k_a, v_a, k_b, v_b)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = cross_attention_distance((half[0], None, half[1]), (half[2], None, half[3]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, reference, rtol=0, atol=2e-2)  # bf16 rounding of K, V only


def test_auto_picks_gram_for_short_sequences() -> None:
    assert choose_method(30, 20, 512) == "gram"
    assert choose_method(100, 25, 512) == "gram"
    assert choose_method(400, 400, 64) == "materialize"


def test_mcma_mask() -> None:
    logits = torch.tensor([[2.0, 0.1, 0.0], [0.0, 0.2, 3.0], [1.0, 5.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    mask = mcma_mask(logits, labels)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [True, False, True]


# --- errors --------------------------------------------------------------------------------


def _ok(batch: int = 2, s: int = 3, d: int = 4) -> tuple:
    return (torch.randn(batch, s, d), torch.randn(batch, s, d), torch.randn(batch, s, d))


@pytest.mark.parametrize(
    ("source", "target", "kwargs", "match"),
    [
        (
            [torch.randn(2, 3, 4)] * 2,
            _ok(),
            {},
            r"source_kqv must be a tuple \(K, Q, V\).*length 2",
        ),
        (_ok(), torch.randn(2, 3, 4), {}, r"target_kqv must be a tuple \(K, Q, V\)"),
        (
            (torch.randn(2, 4), None, torch.randn(2, 4)),
            _ok(),
            {},
            r"source_kqv: K must have shape \(B, S, d\), got \(2, 4\)",
        ),
        (
            _ok(),
            (torch.randn(2, 3, 4), None, torch.randn(2, 5, 4)),
            {},
            r"target_kqv: K and V must have the same shape",
        ),
        (_ok(d=4), _ok(d=8), {}, r"same attention width d.*4 \(source \(2, 3, 4\)\) and 8"),
        (_ok(batch=2), _ok(batch=3), {}, r"same batch size.*2 .*and 3"),
        (
            _ok(),
            (torch.randn(2, 3, 4), torch.randn(2, 1, 4), torch.randn(2, 3, 4)),
            {},
            r"target_kqv: Q must have the shape of K",
        ),
        (
            _ok(),
            ("k", None, torch.randn(2, 3, 4)),
            {},
            r"target_kqv: K must be a torch.Tensor, got str",
        ),
        (
            _ok(),
            _ok(),
            {"mask": torch.ones(2)},
            r"mask must have dtype torch.bool, got torch.float32",
        ),
        (
            _ok(),
            _ok(),
            {"mask": torch.ones(3, dtype=torch.bool)},
            r"mask must have shape \(2,\).*got \(3,\)",
        ),
        (
            _ok(),
            _ok(),
            {"mask": torch.ones(2, 1, dtype=torch.bool)},
            r"mask must have shape \(2,\)",
        ),
        (_ok(), _ok(), {"reduction": "avg"}, r"reduction must be one of"),
        (_ok(), _ok(), {"method": "fast"}, r"method must be one of"),
    ],
)
def test_errors_name_argument_and_shape(source, target, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        cross_attention_loss(source, target, **kwargs)


def test_mcma_mask_errors() -> None:
    with pytest.raises(ValueError, match=r"source_logits must have shape \(B, C\), got \(3,\)"):
        mcma_mask(torch.randn(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        mcma_mask(torch.randn(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be integer class indices"):
        mcma_mask(torch.randn(3, 4), torch.zeros(3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("noise", [1e-5, 1e-2, 1.0])
def test_gram_gradients_match_materialize(dtype: torch.dtype, noise: float) -> None:
    # covers the near-aligned refinement branches of the Gram path too
    k_a, v_a, k_n, v_n = _random_kqv(7, 3, 6, 6, 16, dtype=dtype)
    grads = []
    for method in METHODS:
        k_b = (k_a + noise * k_n).requires_grad_(True)
        v_b = (v_a + noise * v_n).requires_grad_(True)
        loss = cross_attention_loss((k_a, None, v_a), (k_b, None, v_b), method=method)
        loss.backward()
        grads.append((loss.detach(), k_b.grad, v_b.grad))
    tol = {"rtol": 1e-3, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-6, "atol": 1e-8}
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected, **tol)


def test_gradcheck_gram_near_alignment_float64() -> None:
    k_a, v_a, k_n, v_n = _random_kqv(8, 2, 4, 4, 5)
    k_b = (k_a + 1e-6 * k_n).requires_grad_(True)
    v_b = (v_a + 1e-6 * v_n).requires_grad_(True)

    def fn(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return cross_attention_loss((k_a, None, v_a), (k, None, v), method="gram")

    assert torch.autograd.gradcheck(fn, (k_b, v_b), eps=1e-9, atol=1e-4)


# --- a frozen source's own term, given (a source cache's) ------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_given_source_square_gives_the_golden_values_and_the_same_gradients(dtype) -> None:
    for case in GOLDEN["cases"]:
        k_a, v_a, k_b, v_b = _tensors(case, dtype)
        square = source_square(k_a, v_a)
        grads = []
        for known in (None, square):
            k, v = k_b.clone().requires_grad_(True), v_b.clone().requires_grad_(True)
            got = cross_attention_distance(
                (k_a, None, v_a), (k, None, v), method="gram", source_square=known
            )
            got.sum().backward()
            grads.append((got.detach(), k.grad, v.grad))
            atol = 1e-10 if dtype == torch.float64 else 1e-5
            np.testing.assert_allclose(got.detach().numpy(), case["per_sample"], atol=atol)
        for full, cached in zip(grads[0], grads[1], strict=True):
            assert torch.equal(full, cached)  # the same numbers, bit for bit


def test_a_given_source_square_is_what_is_used_and_gradchecks() -> None:
    k_a, v_a, k_b, v_b = _random_kqv(5, 3, 6, 4, 7)
    src, tgt = (k_a, None, v_a), (k_b, None, v_b)
    square = source_square(k_a, v_a)
    # it is read, not recomputed: a doubled ‖M_a‖² shrinks M̂_a and changes the distance
    plain = cross_attention_distance(src, tgt, method="gram")
    assert not torch.allclose(
        cross_attention_distance(src, tgt, method="gram", source_square=2 * square), plain
    )
    # the materialised path, and a square of another dtype, are the full computation
    assert torch.equal(
        cross_attention_distance(src, tgt, method="gram", source_square=(2 * square).float()),
        plain,
    )
    torch.testing.assert_close(
        cross_attention_distance(src, tgt, method="materialize", source_square=2 * square),
        cross_attention_distance(src, tgt, method="materialize"),
    )
    k_b.requires_grad_(True)
    v_b.requires_grad_(True)

    def fn(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return cross_attention_distance(src, (k, None, v), method="gram", source_square=square)

    assert torch.autograd.gradcheck(fn, (k_b, v_b))
    assert torch.autograd.gradgradcheck(fn, (k_b, v_b))
    with pytest.raises(DcatError, match=r"source_square must have shape \(3,\).*got \(2,\)"):
        cross_attention_distance(src, tgt, method="gram", source_square=square[:2])
