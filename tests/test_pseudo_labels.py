"""Pseudo-labels: the source's confident predictions as the target's hard labels."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from dcat.errors import DcatError
from dcat.experiment.config import load_config
from dcat.training.methods import get_method, list_methods, resolve_method
from dcat.training.tasks import SourceSpec, TransferTask

from conftest import small_net


def _by_hand(source: list[list[float]], target: list[list[float]], threshold: float) -> float:
    """The term written out: softmax, argmax, the kept samples' mean cross-entropy."""
    total, kept = 0.0, 0
    for s, t in zip(source, target, strict=True):
        p = [math.exp(v) / sum(math.exp(u) for u in s) for v in s]
        if max(p) >= threshold:
            label = p.index(max(p))
            total += -(t[label] - math.log(sum(math.exp(u) for u in t)))
            kept += 1
    return total / max(1, kept)


SOURCE = [[3.0, 0.0, 0.0], [0.2, 0.1, 0.0], [0.0, 0.0, 2.5], [1.0, 1.1, 0.9]]
TARGET = [[0.5, 0.1, -0.3], [0.0, 1.0, 0.0], [1.0, 0.0, 0.2], [0.3, -0.2, 0.4]]


def _term(threshold: float, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    source, target_net = small_net("skeleton"), small_net("imu")  # the logits below are given
    method = get_method("pseudo_label")(source, target_net, name="s", threshold=threshold)
    logits = target if target is not None else torch.tensor(TARGET)
    batch = type("B", (), {})()
    batch.outputs = type("O", (), {"logits": torch.tensor(SOURCE)})()
    batch.target = type("T", (), {"logits": logits})()
    return method(batch)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.7, 0.99])
def test_pseudo_labels_match_a_hand_computed_case(threshold: float) -> None:
    out = _term(threshold)
    assert out["loss"].item() == pytest.approx(_by_hand(SOURCE, TARGET, threshold), abs=1e-6)
    # source confidences: 0.9094, 0.3672, 0.8590, 0.3672 (rounded): 2 of 4 kept above 0.5
    kept = {0.0: 1.0, 0.5: 0.5, 0.7: 0.5, 0.99: 0.0}[threshold]
    assert out["pl_frac"].item() == pytest.approx(kept)


def test_no_confident_sample_gives_zero_and_no_gradient() -> None:
    target = torch.tensor(TARGET, requires_grad=True)
    out = _term(0.99, target)
    out["loss"].backward()
    assert out["loss"].item() == 0.0 and torch.count_nonzero(target.grad) == 0


def test_the_threshold_is_checked_and_the_method_is_registered(tmp_path) -> None:
    assert "pseudo_label" in list_methods()
    method = get_method("pseudo_label")
    assert (method.label, method.component, method.same_classes) == ("Pseudo-labels", "pl", True)
    assert resolve_method({"name": "pseudo_label", "threshold": 0.9}, "m").option_dict == {
        "threshold": 0.9
    }
    with pytest.raises(DcatError, match=r"m: threshold must be in \[0, 1\], got 1.5"):
        resolve_method({"name": "pseudo_label", "threshold": 1.5}, "m")
    from test_experiment import TINY, _write

    config = load_config(_write(tmp_path, {**TINY, "methods": ["pseudo_label"], "lambdas": []}))
    assert config.methods == ["pseudo_label"]


def test_pseudo_labels_through_a_transfer_task(paired) -> None:
    source, target = small_net("skeleton").eval(), small_net("imu").eval()
    spec = SourceSpec("skel", source, modality="skeleton", method="pseudo_label", weight=0.5,
                      options={"threshold": 0.0})  # fmt: skip
    task = TransferTask(target, "imu", [spec]).eval()
    batch = next(iter(DataLoader(paired.subset(range(12)), batch_size=12)))
    out = task(batch)
    src = source.forward_all(batch["inputs"]["skeleton"]).logits
    tgt = target.forward_all(batch["inputs"]["imu"]).logits
    expected = torch.nn.functional.cross_entropy(tgt, src.argmax(-1))  # every sample kept
    torch.testing.assert_close(out["pl/skel"], expected)
    torch.testing.assert_close(out["loss"], out["ce"] + 0.5 * expected)
    assert out["pl_frac/skel"].item() == 1.0
